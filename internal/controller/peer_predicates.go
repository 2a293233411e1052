package controller

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// podPeeringChanged passes pod events that change what the peer reconciler does.
var podPeeringChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, cur, ok := podPair(e)
		return !ok || old.Status.PodIP != cur.Status.PodIP || podReady(old) != podReady(cur) ||
			restarts(old) != restarts(cur)
	},
}

// podPair returns the pods of an update event.
func podPair(e event.UpdateEvent) (old, cur *corev1.Pod, ok bool) {
	old, okOld := e.ObjectOld.(*corev1.Pod)
	cur, okCur := e.ObjectNew.(*corev1.Pod)
	return old, cur, okOld && okCur
}

// restarts is how often the pod's containers have restarted: a restarted bitcoind
// has lost its added nodes.
func restarts(pod *corev1.Pod) int32 {
	var n int32
	for _, c := range pod.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

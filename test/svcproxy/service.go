package svcproxy

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServiceLookup maps a Service's port to one of its endpoints as kube-proxy would
// route to it: a ready, running pod that the Service's selector selects (the first by
// name), at the port's target port. The local control plane runs no EndpointSlice
// controller, so the pods are read through the selector.
func ServiceLookup(c client.Reader) Lookup {
	return func(ctx context.Context, namespace, name string, port int) (string, error) {
		svc := &corev1.Service{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, svc); err != nil {
			return "", err
		}
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == port })
		if i < 0 {
			return "", fmt.Errorf("service %s/%s has no port %d", namespace, name, port)
		}
		if len(svc.Spec.Selector) == 0 {
			return "", fmt.Errorf("service %s/%s selects no pods", namespace, name)
		}
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
			return "", err
		}
		slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return cmp.Compare(a.Name, b.Name) })
		for j := range pods.Items {
			pod := &pods.Items[j]
			if target, ok := targetPort(svc.Spec.Ports[i], pod); ok && serving(pod) {
				return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(target)), nil
			}
		}
		return "", fmt.Errorf("service %s/%s has no ready endpoint for port %d", namespace, name, port)
	}
}

// serving: the pod is an endpoint kube-proxy routes to.
func serving(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort is the pod's port a Service port leads to: a number, the Service port
// itself when unset, or the pod's container port of that name.
func targetPort(sp corev1.ServicePort, pod *corev1.Pod) (int, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String:
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == sp.TargetPort.StrVal {
					return int(p.ContainerPort), true
				}
			}
		}
		return 0, false
	case sp.TargetPort.IntVal != 0:
		return int(sp.TargetPort.IntVal), true
	default:
		return int(sp.Port), true
	}
}

package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// Defaults of the status reconciler's rollout checks.
const (
	// DefaultStuckAfter is how long a pod may wait in a stuck reason before its
	// network turns Degraded: the kubelet's back-off for image pulls and crash loops
	// grows to 5 minutes, so by then it has retried about five times.
	DefaultStuckAfter = 5 * time.Minute
	// DefaultRepairPeriod is the least time between two stuck pods the operator
	// deletes in one network: a replacement gets that long to start before the next.
	DefaultRepairPeriod = time.Minute
)

// stuckReasons are the container waiting reasons that no waiting cures: the image
// cannot be pulled, or the container keeps crashing. A Pending pod that is not
// scheduled, or whose container is still being created, is not stuck.
var stuckReasons = []string{"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff"}

// stuckPod is a pod of the network's StatefulSet whose container waits in a stuck
// reason.
type stuckPod struct {
	Name      string
	UID       types.UID
	Ordinal   int
	Container string
	Reason    string
	Since     time.Time
	Revision  string // the pod's controller-revision-hash
}

// stuckPods returns the StatefulSet's pods that have waited in a stuck reason for at
// least after, by ordinal, and how long until the next waiting pod turns stuck (0:
// none will). A pod's wait starts when it last turned not ready (its Ready
// condition's transition), or when it was created if it never reported one.
func stuckPods(sts *appsv1.StatefulSet, pods []corev1.Pod, now time.Time, after time.Duration) ([]stuckPod, time.Duration) {
	var stuck []stuckPod
	var recheck time.Duration
	for i := range pods {
		p, ok := waitingPod(sts, &pods[i])
		if !ok {
			continue
		}
		if left := p.Since.Add(after).Sub(now); left > 0 {
			if recheck == 0 || left < recheck {
				recheck = left
			}
			continue
		}
		stuck = append(stuck, p)
	}
	slices.SortFunc(stuck, func(a, b stuckPod) int { return a.Ordinal - b.Ordinal })
	return stuck, recheck
}

// waitingPod describes a live pod of the StatefulSet that is not ready and has a
// container waiting in a stuck reason.
func waitingPod(sts *appsv1.StatefulSet, pod *corev1.Pod) (stuckPod, bool) {
	ordinal, ok := podOrdinal(sts, pod)
	if !ok || pod.DeletionTimestamp != nil {
		return stuckPod{}, false
	}
	since := pod.CreationTimestamp.Time
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			if c.Status == corev1.ConditionTrue {
				return stuckPod{}, false
			}
			since = c.LastTransitionTime.Time
		}
	}
	for _, c := range pod.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil && slices.Contains(stuckReasons, w.Reason) {
			return stuckPod{Name: pod.Name, UID: pod.UID, Ordinal: int(ordinal), Container: c.Name, Reason: w.Reason,
				Since: since, Revision: pod.Labels[appsv1.ControllerRevisionHashLabelKey]}, true
		}
	}
	return stuckPod{}, false
}

// rolloutStuckMessage is the Degraded message for the stuck pods, empty for none. It
// names the first and holds nothing that changes while it stays stuck, so that a
// stuck network costs no write.
func rolloutStuckMessage(stuck []stuckPod, after time.Duration) string {
	if len(stuck) == 0 {
		return ""
	}
	p := stuck[0]
	more := ""
	if len(stuck) > 1 {
		more = fmt.Sprintf(" (and %d more pods)", len(stuck)-1)
	}
	return fmt.Sprintf("Pod %s has waited in %s (container %s) since %s, more than %s%s: the rollout cannot finish; "+
		"fix the spec (spec.image, spec.resources) and the operator replaces the pod",
		p.Name, p.Reason, p.Container, p.Since.UTC().Format(time.RFC3339), after, more)
}

// repairable returns the first stuck pod that the fixed spec would replace: its
// revision is not the StatefulSet's update revision. Under OrderedReady the
// StatefulSet controller waits for such a pod to turn ready before it moves on, which
// it never does, so it is never replaced unless deleted.
func repairable(sts *appsv1.StatefulSet, stuck []stuckPod) (stuckPod, bool) {
	update := sts.Status.UpdateRevision
	if update == "" || sts.Status.ObservedGeneration < sts.Generation {
		return stuckPod{}, false // the StatefulSet controller has not taken the spec in yet
	}
	for _, p := range stuck {
		if p.Revision != "" && p.Revision != update {
			return p, true
		}
	}
	return stuckPod{}, false
}

// repairRollout deletes one stuck pod of an old revision, unless the network had one
// deleted less than RepairPeriod ago; then it returns when to look again.
func (r *StatusReconciler) repairRollout(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, sts *appsv1.StatefulSet, stuck []stuckPod) (time.Duration, error) {
	p, ok := repairable(sts, stuck)
	if !ok {
		return 0, nil
	}
	if last, ok := r.repairs.load(network); ok {
		if wait := last.Add(r.RepairPeriod).Sub(r.now()); wait > 0 {
			return wait, nil
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: network.Namespace, Name: p.Name}}
	// The UID precondition deletes the pod that was seen stuck, never its replacement.
	err := r.Delete(ctx, pod, client.Preconditions{UID: &p.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil // gone already: the pod's events bring the next reconcile
	}
	if err != nil {
		return 0, fmt.Errorf("failed to delete stuck pod %s: %w", p.Name, err)
	}
	r.repairs.store(network, r.now())
	log.FromContext(ctx).Info("Deleted stuck pod", "pod", p.Name, "reason", p.Reason,
		"revision", p.Revision, "updateRevision", sts.Status.UpdateRevision)
	r.Recorder.Eventf(network, corev1.EventTypeNormal, "StuckPodDeleted",
		"Deleted pod %s, waiting in %s at revision %s, so that the StatefulSet controller recreates it at update revision %s",
		p.Name, p.Reason, p.Revision, sts.Status.UpdateRevision)
	return 0, nil
}

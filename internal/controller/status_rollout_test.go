package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// waiting is a pod of sts, not ready since since, whose container waits for reason
// (none: no container status, as for a pod not scheduled yet).
func waiting(sts *appsv1.StatefulSet, ordinal int, reason string, since time.Time) corev1.Pod {
	pod := testPod(sts, fmt.Sprintf("%s-%d", sts.Name, ordinal), "", corev1.ConditionFalse)
	pod.Status.Conditions[0].LastTransitionTime = metav1.NewTime(since)
	if reason != "" {
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "bitcoind",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
	}
	return pod
}

func TestStuckPods(t *testing.T) {
	sts := testStatefulSet()
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	after := 5 * time.Minute
	names := func(stuck []stuckPod) (out []string) {
		for _, p := range stuck {
			out = append(out, p.Name+" "+p.Reason)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		pods    []corev1.Pod
		stuck   []string
		recheck time.Duration
	}{
		{"waited exactly the threshold", []corev1.Pod{waiting(sts, 0, "ImagePullBackOff", now.Add(-after))},
			[]string{"n-sts-0 ImagePullBackOff"}, 0},
		{"a second short of it: look again in a second", []corev1.Pod{waiting(sts, 0, "ImagePullBackOff", now.Add(-after+time.Second))},
			nil, time.Second},
		{"every stuck reason, by ordinal", []corev1.Pod{
			waiting(sts, 10, "CrashLoopBackOff", now.Add(-time.Hour)),
			waiting(sts, 2, "ErrImagePull", now.Add(-time.Hour)),
			waiting(sts, 1, "ImagePullBackOff", now.Add(-time.Hour)),
		}, []string{"n-sts-1 ImagePullBackOff", "n-sts-2 ErrImagePull", "n-sts-10 CrashLoopBackOff"}, 0},
		{"Pending, not scheduled, for an hour", []corev1.Pod{waiting(sts, 0, "", now.Add(-time.Hour))}, nil, 0},
		{"a container being created for an hour", []corev1.Pod{waiting(sts, 0, "ContainerCreating", now.Add(-time.Hour))}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			stuck, recheck := stuckPods(sts, tc.pods, now, after)
			g.Expect(names(stuck)).To(Equal(tc.stuck))
			g.Expect(recheck).To(Equal(tc.recheck))
		})
	}

	t.Run("only live pods of the StatefulSet that are not ready", func(t *testing.T) {
		g := NewWithT(t)
		stray := waiting(sts, 0, "ImagePullBackOff", now.Add(-time.Hour))
		stray.OwnerReferences = nil
		deleting := waiting(sts, 1, "ImagePullBackOff", now.Add(-time.Hour))
		deleting.DeletionTimestamp = &metav1.Time{Time: now}
		ready := waiting(sts, 2, "ImagePullBackOff", now.Add(-time.Hour))
		ready.Status.Conditions[0].Status = corev1.ConditionTrue
		stuck, _ := stuckPods(sts, []corev1.Pod{stray, deleting, ready}, now, after)
		g.Expect(stuck).To(BeEmpty())
	})
}

func TestRepairableNeedsANewUpdateRevision(t *testing.T) {
	g := NewWithT(t)
	sts := testStatefulSet()
	stuck := []stuckPod{{Name: "n-sts-1", Revision: "r2"}, {Name: "n-sts-2", Revision: "r2"}}
	sts.Status.UpdateRevision = "r2"
	_, ok := repairable(sts, stuck)
	g.Expect(ok).To(BeFalse(), "the spec is not fixed yet")
	sts.Status.UpdateRevision = "r3"
	sts.Generation = 3
	sts.Status.ObservedGeneration = 2
	_, ok = repairable(sts, stuck)
	g.Expect(ok).To(BeFalse(), "the StatefulSet controller has not seen the spec yet")
	sts.Status.ObservedGeneration = 3
	p, ok := repairable(sts, stuck)
	g.Expect(ok).To(BeTrue())
	g.Expect(p.Name).To(Equal("n-sts-1"))
}

// createWaitingPod creates pod <sts>-<ordinal> at revision, Pending and not ready since
// since, its container waiting for reason (none: not scheduled).
func createWaitingPod(t *testing.T, sts *appsv1.StatefulSet, ordinal int, revision, reason string, since time.Time) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	pod := podOf(sts, ordinal)
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	g.Expect(k8s.Create(context.Background(), pod)).To(Succeed())
	pod.Status = waiting(sts, ordinal, reason, since).Status
	pod.Status.Phase = corev1.PodPending
	if reason == "" {
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.NewTime(since)}}
	}
	g.Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())
	return pod
}

// setRevisions writes the StatefulSet's status as its controller would for a rollout
// from current to update.
func setRevisions(t *testing.T, sts *appsv1.StatefulSet, current, update string) {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(sts), sts)).To(Succeed())
	sts.Status.ObservedGeneration = sts.Generation
	sts.Status.CurrentRevision, sts.Status.UpdateRevision = current, update
	g.Expect(k8s.Status().Update(context.Background(), sts)).To(Succeed())
}

func podExists(g Gomega, pod *corev1.Pod) bool {
	err := k8s.Get(context.Background(), client.ObjectKeyFromObject(pod), &corev1.Pod{})
	g.Expect(client.IgnoreNotFound(err)).To(Succeed())
	return !apierrors.IsNotFound(err)
}

// A rollout stuck on pods that wait in ImagePullBackOff or CrashLoopBackOff turns the
// network Degraded, not before testStuckAfter and not for a Pending pod, however old.
// Once the StatefulSet has a new update revision, the operator deletes one stuck pod
// of the old revision per repair period, with an event.
func TestRolloutStuckIsReportedAndRepaired(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "rollout", 5)
	var sts *appsv1.StatefulSet
	g.Eventually(func(g Gomega) { sts = statefulSet(g, n) }, timeout, interval).Should(Succeed())
	setRevisions(t, sts, "r1", "r2")
	hourAgo := time.Now().Add(-time.Hour)

	createPod(t, sts, 0, podIP(t), true)
	unscheduled := createWaitingPod(t, sts, 1, "r1", "", hourAgo)
	creating := createWaitingPod(t, sts, 2, "r1", "ContainerCreating", hourAgo)
	start := time.Now().Truncate(time.Second) // transition times have seconds only
	pulling := createWaitingPod(t, sts, 3, "r2", "ImagePullBackOff", start)
	crashing := createWaitingPod(t, sts, 4, "r2", "CrashLoopBackOff", start)

	testkit.By(t, "Degraded names the first stuck pod, once it has waited testStuckAfter")
	var degraded *metav1.Condition
	g.Eventually(func(g Gomega) {
		degraded = meta.FindStatusCondition(getNetwork(g, n).Status.Conditions, bitcoinv1alpha1.ConditionDegraded)
		g.Expect(degraded).NotTo(BeNil())
		g.Expect(degraded.Reason).To(Equal("RolloutStuck"))
	}, timeout, interval).Should(Succeed())
	g.Expect(degraded.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(degraded.Message).To(HavePrefix(fmt.Sprintf("Pod rollout-sts-3 has waited in ImagePullBackOff (container bitcoind) since %s, more than %s (and 1 more pods): ",
		start.UTC().Format(time.RFC3339), testStuckAfter)))
	g.Expect(degraded.LastTransitionTime.Time).To(BeTemporally(">=", start.Add(testStuckAfter)))
	g.Eventually(func(g Gomega) []string { return events(g, n) }, timeout, interval).Should(
		ContainElement(HavePrefix("Warning RolloutStuck: Pod rollout-sts-3 has waited in ImagePullBackOff")))

	testkit.By(t, "while the update revision is the stuck pods' own, nothing is deleted")
	for _, p := range []*corev1.Pod{unscheduled, creating, pulling, crashing} {
		g.Expect(podExists(g, p)).To(BeTrue(), p.Name)
	}

	testkit.By(t, "a new update revision: the first stuck pod is deleted, with an event")
	setRevisions(t, sts, "r1", "r3")
	g.Eventually(func(g Gomega) bool { return podExists(g, pulling) }, timeout, interval).Should(BeFalse())
	g.Eventually(func(g Gomega) []string { return events(g, n) }, timeout, interval).Should(ContainElement(
		"Normal StuckPodDeleted: Deleted pod rollout-sts-3, waiting in ImagePullBackOff at revision r2, so that the StatefulSet controller recreates it at update revision r3"))
	g.Eventually(func(g Gomega) string {
		return meta.FindStatusCondition(getNetwork(g, n).Status.Conditions, bitcoinv1alpha1.ConditionDegraded).Message
	}, timeout, interval).Should(HavePrefix("Pod rollout-sts-4 has waited in CrashLoopBackOff"))

	testkit.By(t, "one pod per repair period: the second stuck pod and the Pending ones stay")
	g.Consistently(func(g Gomega) {
		for _, p := range []*corev1.Pod{unscheduled, creating, crashing} {
			g.Expect(podExists(g, p)).To(BeTrue(), p.Name)
		}
	}, 3*time.Second, interval).Should(Succeed())

	testkit.By(t, "no stuck pod left: Degraded is False again")
	g.Expect(k8s.Delete(context.Background(), crashing)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getNetwork(g, n).Status.Conditions, bitcoinv1alpha1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("Reconciled"))
	}, timeout, interval).Should(Succeed())
	g.Expect(strings.Join(events(g, n), "\n")).NotTo(ContainSubstring("StuckPodDeleted: Deleted pod rollout-sts-4"))
}

package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func TestCacheOptionsWatchNamespace(t *testing.T) {
	g := NewWithT(t)
	g.Expect(CacheOptions("").DefaultNamespaces).To(BeNil(), "empty: every namespace")
	g.Expect(CacheOptions("team-a").DefaultNamespaces).To(HaveLen(1))
	g.Expect(CacheOptions(" team-a, team-b ,").DefaultNamespaces).To(SatisfyAll(HaveKey("team-a"), HaveKey("team-b"), HaveLen(2)))
}

func TestSlimPodKeepsWhatTheStatusReconcilerReads(t *testing.T) {
	g := NewWithT(t)
	pod := testPod(testStatefulSet(), "n-sts-0", "127.0.0.1", corev1.ConditionTrue)
	pod.Labels = map[string]string{"app": "x"}
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	pod.Spec.Containers = []corev1.Container{{Name: "bitcoind", Image: "bitcoin/bitcoin:28.1"}}
	before := observeNodes(&bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}}, testStatefulSet(), []corev1.Pod{*pod.DeepCopy()})

	obj, err := slimPod(&pod)
	g.Expect(err).NotTo(HaveOccurred())
	slim := obj.(*corev1.Pod)
	g.Expect(slim.ManagedFields).To(BeNil())
	g.Expect(slim.Spec.Containers).To(BeEmpty())
	g.Expect(slim.Labels).To(Equal(map[string]string{"app": "x"}))
	after := observeNodes(&bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}}, testStatefulSet(), []corev1.Pod{*slim})
	g.Expect(after.Nodes).To(Equal(before.Nodes))
}

func TestSlimPodKeepsTheWaitingReason(t *testing.T) {
	g := NewWithT(t)
	sts := testStatefulSet()
	since := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	pod := waiting(sts, 0, "ImagePullBackOff", since)
	pod.Status.ContainerStatuses[0].State.Waiting.Message = `Back-off pulling image "bitcoin/bitcoin:broken"`

	obj, err := slimPod(pod.DeepCopy())
	g.Expect(err).NotTo(HaveOccurred())
	slim := obj.(*corev1.Pod)
	g.Expect(slim.Status.ContainerStatuses[0].State.Waiting).To(Equal(&corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}))
	stuck, _ := stuckPods(sts, []corev1.Pod{*slim}, since.Add(time.Hour), time.Minute)
	g.Expect(stuck).To(HaveLen(1))
	g.Expect(stuck[0].Since).To(Equal(since))
}

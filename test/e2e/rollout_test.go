//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// A network rolled onto an image that cannot be pulled gets stuck: the StatefulSet
// controller replaced the last pod, kwok (the stage for cluster.BrokenTag) keeps it in
// ImagePullBackOff, and under OrderedReady nothing moves. The operator reports it;
// once the image is fixed it deletes the stuck pod, the StatefulSet controller
// recreates it from the fixed spec, and the rollout finishes.
func TestStuckRolloutIsReportedAndRepaired(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	n := testkit.CreateNetwork(t, k8s, ns, "stuck", 3)
	expectConverged(g, n, 3)
	good := network(g, n).Status.Image
	g.Expect(good).NotTo(BeEmpty())
	broken := "bitcoin/bitcoin:" + cluster.BrokenTag

	testkit.By(t, "an image that cannot be pulled: Degraded RolloutStuck names the pod, and the StatefulSet rolls")
	setImage(t, n, broken)
	g.Eventually(func(g Gomega) {
		c := networkCondition(g, n, bitcoinv1alpha1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("RolloutStuck"))
		g.Expect(c.Message).To(HavePrefix("Pod stuck-sts-2 has waited in ImagePullBackOff (container bitcoind) since "))
	}, convergeTimeout, interval).Should(Succeed())
	sts := statefulSetOf(g, n)
	g.Expect(sts.Status.CurrentRevision).NotTo(Equal(sts.Status.UpdateRevision),
		"the StatefulSet is rolling: the upgradeable reconciler holds Upgradeable=False")
	// The recorder sends the event after the status write, in the background.
	g.Eventually(func(g Gomega) []string { return networkEvents(g, n) }, convergeTimeout, interval).Should(
		ContainElement(HavePrefix("RolloutStuck: Pod stuck-sts-2 has waited in ImagePullBackOff")))
	g.Expect(networkEvents(g, n)).NotTo(ContainElement(HavePrefix("StuckPodDeleted")),
		"the stuck pod is at the update revision: nothing to repair yet")

	testkit.By(t, "the image fixed: the operator deletes the stuck pod, and the network recovers")
	setImage(t, n, good)
	g.Eventually(func(g Gomega) []string { return networkEvents(g, n) }, convergeTimeout, interval).Should(
		ContainElement(MatchRegexp(`^StuckPodDeleted: Deleted pod stuck-sts-2, waiting in ImagePullBackOff at revision stuck-sts-\w+, so that the StatefulSet controller recreates it at update revision stuck-sts-\w+$`)))
	expectConverged(g, n, 3)
	g.Eventually(func(g Gomega) {
		c := networkCondition(g, n, bitcoinv1alpha1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("Reconciled"))
		sts := statefulSetOf(g, n)
		g.Expect(sts.Status.CurrentRevision).To(Equal(sts.Status.UpdateRevision),
			"the rollout finished: the upgradeable reconciler sets Upgradeable=True")
		for _, p := range childrenOf(g, ns, n.Name).pods {
			g.Expect(p.Spec.Containers[0].Image).To(Equal(good), p.Name)
		}
	}, convergeTimeout, interval).Should(Succeed())
	g.Expect(eventCount(g, n, "StuckPodDeleted")).To(BeEquivalentTo(1), "one stuck pod, deleted once")
}

func network(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) *bitcoinv1alpha1.BitcoinNetwork {
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
	return cur
}

func statefulSetOf(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: n.Namespace, Name: n.Name + "-sts"}, sts)).To(Succeed())
	return sts
}

// setImage changes spec.image with a merge patch.
func setImage(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, image string) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"image":%q}}`, image))
	NewWithT(t).Expect(k8s.Patch(context.Background(), n.DeepCopy(), client.RawPatch("application/merge-patch+json", patch))).To(Succeed())
}

// eventCount is how often an event of reason was recorded about the network: the
// recorder folds repeats into one Event with a count.
func eventCount(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork, reason string) int32 {
	var list corev1.EventList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(n.Namespace))).To(Succeed())
	var count int32
	for _, e := range list.Items {
		if e.InvolvedObject.Name == n.Name && e.Reason == reason {
			count += max(e.Count, 1)
		}
	}
	return count
}

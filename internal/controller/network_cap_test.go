package controller

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// A network above --max-nodes-per-network is Degraded, says so once as a Warning
// event naming spec.nodes and the cap, and keeps its objects as they were: the
// StatefulSet is not touched at all. Back under the cap, it is applied again.
func TestNetworkAboveTheCapKeepsItsObjects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	n := testkit.CreateNetwork(t, k8s, ns, "capped", 3)
	var before *appsv1.StatefulSet
	g.Eventually(func(g Gomega) {
		g.Expect(degraded(g, n).Status).To(Equal(metav1.ConditionFalse))
		before = statefulSet(g, n)
		g.Expect(*before.Spec.Replicas).To(BeEquivalentTo(3))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "spec.nodes above the cap")
	setNodes(t, n, testMaxNodes+1)
	want := fmt.Sprintf("spec.nodes is %d, above the %d nodes per network this operator allows (its --max-nodes-per-network)", testMaxNodes+1, testMaxNodes)
	g.Eventually(func(g Gomega) {
		c := degraded(g, n)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(reasonTooManyNodes))
		g.Expect(c.Message).To(HavePrefix(want))
		g.Expect(events(g, n)).To(ContainElement(HavePrefix("Warning TooManyNodes: " + want)))
	}, timeout, interval).Should(Succeed())
	// The reconcile that wrote Degraded decided not to apply, and every later one
	// decides the same: what the StatefulSet is now, it stays.
	after := statefulSet(g, n)
	g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion), "the StatefulSet was written")
	g.Expect(*after.Spec.Replicas).To(BeEquivalentTo(3))
	live := getNetwork(g, n)
	g.Expect(live.Status.ObservedGeneration).To(BeNumerically("<", live.Generation), "the spec above the cap was not applied")

	testkit.By(t, "a new network above the cap gets no StatefulSet")
	big := testkit.CreateNetwork(t, k8s, ns, "big", testMaxNodes+5)
	g.Eventually(func(g Gomega) {
		g.Expect(degraded(g, big).Reason).To(Equal(reasonTooManyNodes))
	}, timeout, interval).Should(Succeed())
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: big.Name + "-sts"}, &appsv1.StatefulSet{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)

	testkit.By(t, "back at the cap, the network is applied")
	setNodes(t, n, testMaxNodes)
	g.Eventually(func(g Gomega) {
		g.Expect(degraded(g, n).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(*statefulSet(g, n).Spec.Replicas).To(BeEquivalentTo(testMaxNodes))
		live := getNetwork(g, n)
		g.Expect(live.Status.ObservedGeneration).To(Equal(live.Generation))
	}, timeout, interval).Should(Succeed())
}

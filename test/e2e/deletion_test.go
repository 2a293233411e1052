//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

func gone(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) {
	err := k8s.Get(context.Background(), client.ObjectKeyFromObject(n), &bitcoinv1alpha1.BitcoinNetwork{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the network still exists: %v", err)
}

// expectNothingRecreated checks the audit log: since the deletion started, the
// operator applied no StatefulSet or Service in the namespace.
func expectNothingRecreated(g Gomega, namespace string, since time.Time) {
	for _, resource := range []string{"statefulsets", "services"} {
		g.Expect(operatorWrites(g, namespace, resource, since)).To(BeEmpty(), "the operator wrote %s during the deletion", resource)
	}
}

// "Delete the network and the StatefulSet, the Service and the pods are deleted as well."
func TestDeletionForeground(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "foreground", 3)
	expectConverged(g, n, 3)

	start := time.Now()
	g.Expect(k8s.Delete(ctx, n, client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())
	held := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), held)).To(Succeed(), "a foreground deletion keeps the network until its children are gone")
	g.Expect(held.DeletionTimestamp).NotTo(BeNil())
	g.Expect(held.Finalizers).To(ContainElement(metav1.FinalizerDeleteDependents))

	g.Eventually(func(g Gomega) { gone(g, n) }, convergeTimeout, interval).Should(Succeed())
	g.Expect(childrenOf(g, n.Namespace, n.Name).empty()).To(BeTrue(), "the network went before its children")
	expectNothingRecreated(g, n.Namespace, start)
}

func TestDeletionBackground(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "background", 2)
	expectConverged(g, n, 2)

	start := time.Now()
	g.Expect(k8s.Delete(context.Background(), n, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	gone(g, n)
	g.Eventually(func(g Gomega) { g.Expect(childrenOf(g, n.Namespace, n.Name).empty()).To(BeTrue()) }, convergeTimeout, interval).Should(Succeed())
	expectNothingRecreated(g, n.Namespace, start)
}

func TestDeletionOrphan(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "orphan", 2)
	expectConverged(g, n, 2)

	g.Expect(k8s.Delete(context.Background(), n, client.PropagationPolicy(metav1.DeletePropagationOrphan))).To(Succeed())
	g.Eventually(func(g Gomega) { gone(g, n) }, convergeTimeout, interval).Should(Succeed())
	c := childrenOf(g, n.Namespace, n.Name)
	g.Expect(c.statefulSets).To(HaveLen(1))
	g.Expect(c.services).To(HaveLen(1))
	g.Expect(c.pods).To(HaveLen(2))
	g.Expect(c.statefulSets[0].OwnerReferences).To(BeEmpty())
	g.Expect(c.services[0].OwnerReferences).To(BeEmpty())
}

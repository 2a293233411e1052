//go:build e2e

package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// An operator killed while a network converges picks up where it was.
func TestOperatorRestartWhileConverging(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	n := createNetwork(t, ns, "restart", 5)
	g.Eventually(func(g Gomega) {
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
		g.Expect(cur.Status.ReadyNodes).To(BeNumerically(">=", 1))
	}, convergeTimeout, interval).Should(Succeed())

	operator.Kill()
	g.Expect(startOperator()).To(Succeed())
	expectConverged(g, n, 5)

	// Nothing duplicated or stray in the namespace.
	var sts appsv1.StatefulSetList
	var svc corev1.ServiceList
	g.Expect(k8s.List(context.Background(), &sts, client.InNamespace(ns))).To(Succeed())
	g.Expect(k8s.List(context.Background(), &svc, client.InNamespace(ns))).To(Succeed())
	g.Expect(sts.Items).To(HaveLen(1))
	g.Expect(svc.Items).To(HaveLen(1))
}

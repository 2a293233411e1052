//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// An operator killed while a network converges picks up where it was, and finds its
// objects as it left them: it rewrites none of them.
func TestOperatorRestartWhileConverging(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	const nodes = 10
	n := testkit.CreateNetwork(t, k8s, ns, "restart", nodes)
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
		g.Expect(cur.Status.ReadyNodes).To(BeNumerically(">=", 1))
	}, convergeTimeout, 50*time.Millisecond).Should(Succeed())

	operator.Kill()
	g.Expect(cur.Status.ReadyNodes).To(BeNumerically("<", nodes), "the network had converged before the kill")
	restarted := time.Now()
	g.Expect(startOperator()).To(Succeed())
	expectConverged(g, n, nodes)

	// No duplicate or stray object, and no rewrite of the ones there were.
	c := childrenOf(g, ns, n.Name)
	g.Expect(c.statefulSets).To(HaveLen(1))
	g.Expect(c.services).To(HaveLen(1))
	// The credentials Secret too: a restart neither regenerates nor re-salts them.
	for _, resource := range []string{"statefulsets", "services", "networkpolicies", "secrets"} {
		g.Expect(operatorWrites(g, ns, resource, restarted)).To(BeEmpty(), "the restarted operator rewrote %s", resource)
	}
}

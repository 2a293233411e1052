//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// startDoubles runs a Bitcoin Core RPC double on each pod's IP of a network, as kwok's
// pods run no bitcoind: the operator dials the pod IPs the cluster hands out.
func startDoubles(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, creds fleet.CredentialsFunc) (*fleet.Fleet[*bitcointest.Node], *bitcointest.Network) {
	t.Helper()
	world := &bitcointest.Network{}
	f, err := fleet.Start(context.Background(), fleet.Options[*bitcointest.Node]{
		Config: lc.Config, Namespace: n.Namespace, Network: n.Name,
		Start: fleet.Doubles(world), Credentials: creds, Log: os.Stderr,
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	t.Cleanup(f.Stop)
	return f, world
}

func networkCondition(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork, typ string) metav1.Condition {
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
	c := meta.FindStatusCondition(cur.Status.Conditions, typ)
	g.Expect(c).NotTo(BeNil(), "no %s condition", typ)
	return *c
}

// expectPeered waits until every node of the network has at most 8 entries, the
// doubles' links connect them all, and the network says Connected.
func expectPeered(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork, f *fleet.Fleet[*bitcointest.Node], world *bitcointest.Network, nodes int) {
	g.Eventually(func(g Gomega) {
		running := f.Nodes()
		g.Expect(running).To(HaveLen(nodes))
		for name, d := range running {
			g.Expect(len(d.AddedNodes())).To(And(BeNumerically(">=", 1), BeNumerically("<=", 8)), "node %s", name)
		}
		g.Expect(world.Connected()).To(BeTrue())
		g.Expect(networkCondition(g, n, bitcoinv1alpha1.ConditionConnected).Status).To(Equal(metav1.ConditionTrue))
	}, convergeTimeout, interval).Should(Succeed())
}

func networkEvents(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) []string {
	var list corev1.EventList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(n.Namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == n.Name {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// The operator wires the nodes it finds on the pods' IPs into one network, keeps it
// one while it grows past the full mesh, and notices a node that stops answering.
func TestNodesFormOneNetwork(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "peers", 3)
	f, world := startDoubles(t, n, nil)
	expectConverged(g, n, 3)
	expectPeered(g, n, f, world, 3)
	g.Eventually(func(g Gomega) {
		g.Expect(networkCondition(g, n, bitcoinv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
		for _, node := range cur.Status.Nodes {
			g.Expect(node.Peers).To(HaveValue(BeEquivalentTo(4)), "%s: a full mesh of 3", node.NodeName)
			g.Expect(node.Blocks).To(HaveValue(BeEquivalentTo(0)))
		}
	}, convergeTimeout, interval).Should(Succeed())
	g.Expect(kubectl(t, "get", "btcnet", "-n", n.Namespace, n.Name)).To(MatchRegexp(`peers\s+3\s+3\s+True\s+True\s+True`))

	t.Log("scaling to 12 keeps at most 8 entries per node and one network")
	kubectl(t, "scale", "btcnet", "-n", n.Namespace, n.Name, "--replicas=12")
	expectConverged(g, n, 12)
	expectPeered(g, n, f, world, 12)

	t.Log("a node that stops answering gets RPCFailed, and comes back with its entries")
	node, ok := f.Node("peers-sts-5")
	g.Expect(ok).To(BeTrue())
	node.Stop()
	g.Eventually(func(g Gomega) {
		g.Expect(networkEvents(g, n)).To(ContainElement(HavePrefix("RPCFailed: Node peers-sts-5 at ")))
		g.Expect(networkCondition(g, n, bitcoinv1alpha1.ConditionConnected).Status).To(Equal(metav1.ConditionUnknown))
	}, convergeTimeout, interval).Should(Succeed())
	g.Expect(node.Restart()).To(Succeed())
	g.Expect(node.AddedNodes()).To(BeEmpty())
	expectPeered(g, n, f, world, 12)
}

// Nodes that refuse the operator's credentials degrade the network with a message
// that says what is wrong, and no credential.
func TestWrongCredentialsDegradeTheNetwork(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "wrongauth", 2)
	wrong := fleet.Credentials{Username: "someone", Password: "not-the-secret-one"}
	startDoubles(t, n, fleet.StaticCredentials(wrong))
	g.Eventually(func(g Gomega) {
		c := networkCondition(g, n, bitcoinv1alpha1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("RPCAuthenticationFailed"))
		g.Expect(c.Message).To(HavePrefix(fmt.Sprintf("Nodes wrongauth-sts-0, wrongauth-sts-1 refuse the credentials in Secret %q (HTTP 401).",
			"wrongauth-rpc-credentials")))
	}, convergeTimeout, interval).Should(Succeed())
	secret := &corev1.Secret{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: n.Namespace, Name: "wrongauth-rpc-credentials"}, secret)).To(Succeed())
	for _, s := range []string{string(secret.Data["username"]), string(secret.Data["password"])} {
		g.Expect(operatorLog()).NotTo(ContainSubstring(s))
		g.Expect(fmt.Sprint(networkEvents(g, n))).NotTo(ContainSubstring(s))
	}
}

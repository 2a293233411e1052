package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/internal/topology"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// peerNet is a network under test: its pods carry loopback IPs, and a Bitcoin Core
// double listens on each pod's IP and regtest RPC port, so the operator dials the pod
// IP exactly as in a cluster.
type peerNet struct {
	t       *testing.T
	network *bitcoinv1alpha1.BitcoinNetwork
	sts     *appsv1.StatefulSet
	world   *bitcointest.Network
	subnet  string // 127.a.b, unique to the test
	doubles map[int]*bitcointest.Node
	pods    map[int]*corev1.Pod
}

// newPeerNet creates a network and waits for its StatefulSet and credentials.
func newPeerNet(t *testing.T, name string, nodes int32) *peerNet {
	subnet, err := podIPs.Subnet()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	p := &peerNet{t: t, network: testkit.CreateNetwork(t, k8s, newNamespace(t), name, nodes), world: &bitcointest.Network{},
		subnet: subnet, doubles: map[int]*bitcointest.Node{}, pods: map[int]*corev1.Pod{}}
	NewWithT(t).Eventually(func(g Gomega) {
		p.sts = statefulSet(g, p.network)
		g.Expect(getNetwork(g, p.network).Status.SecretName).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())
	// Delete the network before its nodes stop, or the operator would go on failing
	// to reach them, writing events and status while later tests count writes.
	t.Cleanup(func() {
		g := NewWithT(t)
		g.Expect(k8s.Delete(context.Background(), p.network)).To(Succeed())
		g.Eventually(func(g Gomega) {
			err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p.network), &bitcoinv1alpha1.BitcoinNetwork{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}, timeout, interval).Should(Succeed())
		for _, d := range p.doubles {
			d.Stop()
		}
	})
	return p
}

func (p *peerNet) ip(ordinal int) string { return fmt.Sprintf("%s.%d", p.subnet, ordinal+1) }

// credentials reads the network's credentials as a user would, from status.secretName.
func (p *peerNet) credentials() (user, password string) {
	g := NewWithT(p.t)
	secret := &corev1.Secret{}
	name := getNetwork(g, p.network).Status.SecretName
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: p.network.Namespace, Name: name}, secret)).To(Succeed())
	return string(secret.Data["username"]), string(secret.Data["password"])
}

// startNode starts node i's double with the given credentials and its ready pod.
func (p *peerNet) startNode(i int, user, password string) {
	p.t.Helper()
	d, err := p.world.Start(p.ip(i)+":18443", p.ip(i)+":18444", user, password)
	NewWithT(p.t).Expect(err).NotTo(HaveOccurred())
	p.doubles[i] = d
	p.pods[i] = createPod(p.t, p.sts, i, p.ip(i), true)
}

func (p *peerNet) startNodes(from, to int) {
	user, password := p.credentials()
	for i := from; i < to; i++ {
		p.startNode(i, user, password)
	}
}

func (p *peerNet) condition(g Gomega, typ string) *metav1.Condition {
	c := meta.FindStatusCondition(getNetwork(g, p.network).Status.Conditions, typ)
	g.Expect(c).NotTo(BeNil(), "no %s condition", typ)
	return c
}

// expectWired waits until every double has exactly its topology's entries (at most 8),
// the doubles form one graph, and the network says Connected and Synced.
func (p *peerNet) expectWired(nodes int) {
	p.t.Helper()
	NewWithT(p.t).Eventually(func(g Gomega) {
		for i := 0; i < nodes; i++ {
			added := p.doubles[i].AddedNodes()
			g.Expect(len(added)).To(Equal(min(nodes-1, expectedDegree(nodes))), "node %d: %v", i, added)
			for _, a := range added {
				g.Expect(a).To(HavePrefix(p.subnet+"."), "entries are pod IPs")
				g.Expect(a).To(HaveSuffix(":18444"))
			}
		}
		g.Expect(p.world.Connected()).To(BeTrue())
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionConnected).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}

// expectedDegree is how many entries internal/topology gives each node: all others up
// to 9 nodes, one per power of 2 below n beyond (up to 256 nodes).
func expectedDegree(n int) int {
	if n <= 9 {
		return n - 1
	}
	d := 0
	for off := 1; off < n; off *= 2 {
		d++
	}
	return d
}

func TestPeersFormOneNetwork(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "peers", 3)
	p.startNodes(0, 3)
	p.expectWired(3)

	testkit.By(t, "the status shows each node's peers and blocks")
	for _, d := range p.doubles {
		d.SetChain(7, fmt.Sprintf("%064d", 7))
	}
	g.Eventually(func(g Gomega) {
		for _, n := range getNetwork(g, p.network).Status.Nodes {
			g.Expect(n.Peers).To(HaveValue(BeEquivalentTo(4)), "2 outbound and 2 inbound in a full mesh of 3")
			g.Expect(n.Blocks).To(HaveValue(BeEquivalentTo(7)))
		}
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "at steady state: no addnode, a bounded number of observing calls, no write")
	adds := p.doubles[0].Calls("addnode")
	polls := p.doubles[0].Calls("getaddednodeinfo")
	expectNoWrites(t, p.sts, p.pods[0])
	g.Expect(p.doubles[0].Calls("addnode")).To(Equal(adds))
	// About one round per testPeerPeriod (±10 %) during expectNoWrites' 10 s and the
	// wait before it, plus the rounds the touched pod caused.
	g.Expect(p.doubles[0].Calls("getaddednodeinfo") - polls).To(BeNumerically("<=", 15))

	testkit.By(t, "a node whose blocks differ makes the network not Synced")
	p.doubles[2].SetChain(6, fmt.Sprintf("%064d", 6))
	g.Eventually(func(g Gomega) {
		c := p.condition(g, bitcoinv1alpha1.ConditionSynced)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("peers-sts-2 at height 6"))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) []string { return events(g, p.network) }, timeout, interval).Should(
		ContainElement(MatchRegexp(`^Normal PeerAdded: Added \d+ addnode entr(y|ies); peers-sts-\d: peers-sts-\d \(127\.[0-9.]+:18444\)`)))
}

func TestScalingKeepsEightEntriesAndOneNetwork(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "scale", 3)
	p.startNodes(0, 3)
	p.expectWired(3)

	testkit.By(t, "scaling to 12 changes the full mesh into the bounded-degree topology")
	setNodes(t, p.network, 12)
	g.Eventually(func(g Gomega) { g.Expect(*statefulSet(g, p.network).Spec.Replicas).To(BeEquivalentTo(12)) }, timeout, interval).Should(Succeed())
	p.startNodes(3, 12)
	p.expectWired(12)
	for _, d := range p.doubles {
		g.Expect(len(d.AddedNodes())).To(BeNumerically("<=", 8))
	}
	// Stale entries come out in a round after the last additions (once every node
	// took its new entries), and the recorder sends the event in the background.
	g.Eventually(func(g Gomega) []string { return events(g, p.network) }, timeout, interval).Should(
		ContainElement(HavePrefix("Normal PeerRemoved: ")))

	testkit.By(t, "a node that goes away is removed from its peers' lists")
	g.Expect(k8s.Delete(context.Background(), p.pods[11], client.GracePeriodSeconds(0))).To(Succeed())
	p.doubles[11].Stop()
	delete(p.doubles, 11)
	g.Eventually(func(g Gomega) {
		for _, d := range p.doubles {
			g.Expect(d.AddedNodes()).NotTo(ContainElement(p.ip(11) + ":18444"))
		}
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the others keep their slots: only the entries of the gone node's slot go")
	ready := map[int]string{}
	for i := range 11 {
		ready[i] = p.ip(i) + ":18444"
	}
	want := topology.Peers(12, ready)
	g.Eventually(func(g Gomega) {
		for i := range 11 {
			g.Expect(sorted(p.doubles[i].AddedNodes())).To(Equal(want[ready[i]]), "node %d", i)
		}
		g.Expect(p.world.Connected()).To(BeTrue())
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionConnected).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}

func TestUnreachableNodeFailsAndComesBack(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "flaky", 3)
	p.startNodes(0, 3)
	p.expectWired(3)

	testkit.By(t, "a node that stops answering gets RPCFailed, and Connected turns Unknown")
	p.doubles[1].Stop()
	g.Eventually(func(g Gomega) {
		g.Expect(events(g, p.network)).To(ContainElement(And(HavePrefix("Warning RPCFailed: Node flaky-sts-1 at "+p.ip(1)+":18443:"),
			HaveSuffix("retrying with backoff"))))
		c := p.condition(g, bitcoinv1alpha1.ConditionConnected)
		g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(c.Message).To(Equal("Node flaky-sts-1 does not answer RPC (see the RPCFailed events)"))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "restarted with an empty added-node list, it gets its entries back")
	g.Expect(p.doubles[1].Restart()).To(Succeed())
	g.Expect(p.doubles[1].AddedNodes()).To(BeEmpty())
	p.expectWired(3)
}

func TestWrongCredentialsDegrade(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "wrongauth", 2)
	user, password := p.credentials()
	for i := range 2 {
		p.startNode(i, user, password+"-not-it")
	}
	g.Eventually(func(g Gomega) {
		c := p.condition(g, bitcoinv1alpha1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("RPCAuthenticationFailed"))
		g.Expect(c.Message).To(HavePrefix(fmt.Sprintf("Nodes wrongauth-sts-0, wrongauth-sts-1 refuse the credentials in Secret %q (HTTP 401).",
			"wrongauth-rpc-credentials")))
		g.Expect(events(g, p.network)).To(ContainElement(ContainSubstring("refused the credentials in Secret")))
	}, timeout, interval).Should(Succeed())
	expectNoCredentials(t, p.network, user, password)

	testkit.By(t, "nodes that take the credentials clear it")
	for i := range 2 {
		p.doubles[i].Stop()
		g.Expect(k8s.Delete(context.Background(), p.pods[i], client.GracePeriodSeconds(0))).To(Succeed())
	}
	p.world = &bitcointest.Network{}
	g.Eventually(func(g Gomega) {
		var pods corev1.PodList
		g.Expect(k8s.List(context.Background(), &pods, client.InNamespace(p.network.Namespace))).To(Succeed())
		g.Expect(pods.Items).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
	p.startNodes(0, 2)
	g.Eventually(func(g Gomega) {
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	}, timeout, interval).Should(Succeed())
	p.expectWired(2)
}

// expectNoCredentials looks for the username and the passwords in what the operator
// wrote: its log, the network's events and status; and for the passwords in the
// StatefulSet too, whose rpcauth entry holds the username by design.
func expectNoCredentials(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, user string, passwords ...string) {
	t.Helper()
	g := NewWithT(t)
	var evs corev1.EventList
	g.Expect(k8s.List(context.Background(), &evs, client.InNamespace(n.Namespace))).To(Succeed())
	sts := fmt.Sprint(statefulSet(g, n).Spec)
	for where, text := range map[string]string{
		"the operator's log": operatorLog.String(),
		"events":             fmt.Sprint(evs.Items),
		"status":             fmt.Sprint(getNetwork(g, n).Status),
	} {
		g.Expect(strings.Contains(text, user)).To(BeFalse(), "the username appears in %s", where)
		for _, password := range passwords {
			g.Expect(strings.Contains(text, password)).To(BeFalse(), "a password appears in %s", where)
			g.Expect(strings.Contains(sts, password)).To(BeFalse(), "a password appears in the StatefulSet")
		}
	}
}

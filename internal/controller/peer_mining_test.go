package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// setMining replaces spec.mining with a merge patch.
func setMining(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, mining string) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"mining":%s}}`, mining))
	NewWithT(t).Expect(k8s.Patch(context.Background(), n.DeepCopy(), client.RawPatch("application/merge-patch+json", patch))).To(Succeed())
}

// miningKey waits for the network's generated mining key Secret and returns it.
func miningKey(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork) *corev1.Secret {
	t.Helper()
	secret := &corev1.Secret{}
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), keyOf(n, n.Name+"-mining-key"), secret)).To(Succeed())
	}, timeout, interval).Should(Succeed())
	return secret
}

// The operator mines to minHeight once, with the generated key, and says so once per
// batch; raising minHeight mines the difference, lowering it mines nothing.
func TestMiningToMinHeight(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "mining", 3)
	p.startNodes(0, 3)
	p.expectWired(3)

	setMining(t, p.network, `{"minHeight": 101}`)
	key := miningKey(t, p.network)
	g.Expect(metav1.IsControlledBy(key, p.network)).To(BeTrue(), "the network owns its mining key")
	g.Expect(key.Data).To(HaveKey("wif"))
	g.Expect(string(key.Data["descriptor"])).To(MatchRegexp(`^wpkh\(` + string(key.Data["wif"]) + `\)#[a-z0-9]{8}$`))
	address := string(key.Data["address"])
	g.Expect(address).To(HavePrefix("bcrt1q"))

	g.Eventually(func(g Gomega) {
		for i := range 3 {
			g.Expect(p.doubles[i].BestChain()).To(HaveLen(102), "node %d at height 101", i)
		}
		cur := getNetwork(g, p.network)
		g.Expect(cur.Status.Mining).NotTo(BeNil())
		g.Expect(cur.Status.Mining.Address).To(Equal(address))
		g.Expect(cur.Status.Mining.Height).To(HaveValue(BeEquivalentTo(101)))
		g.Expect(events(g, p.network)).To(ContainElement("Normal Mined: Mined 101 blocks on node 0; height 101"))
	}, timeout, interval).Should(Succeed())
	chain := p.doubles[1].BestChain()
	paid, ok := p.world.CoinbaseAddress(chain[len(chain)-1])
	g.Expect(ok).To(BeTrue())
	g.Expect(paid).To(Equal(address), "the coinbase pays the network's key")
	g.Expect(p.doubles[0].Calls("generatetoaddress")).To(Equal(1), "one batch")

	setMining(t, p.network, `{"minHeight": 110}`)
	g.Eventually(func(g Gomega) {
		g.Expect(p.doubles[2].BestChain()).To(HaveLen(111))
		g.Expect(events(g, p.network)).To(ContainElement("Normal Mined: Mined 9 blocks on node 0; height 110"))
	}, timeout, interval).Should(Succeed())

	setMining(t, p.network, `{"minHeight": 50}`)
	p.waitRounds(3)
	g.Expect(p.doubles[0].Calls("generatetoaddress")).To(Equal(2), "lowering minHeight mines nothing")
	g.Expect(p.doubles[0].BestChain()).To(HaveLen(111))

	again := miningKey(t, p.network)
	g.Expect(again.ResourceVersion).To(Equal(key.ResourceVersion), "the key never changes")
	expectNoMiningKey(t, p.network, string(key.Data["wif"]))
}

// What an operator restarted after mining sees: nodes already at minHeight, and no
// memory of having mined. It mines nothing.
func TestMiningNothingTwice(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "mined", 2)
	p.startNodes(0, 2)
	p.expectWired(2)
	p.doubles[1].Mine(101, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")

	setMining(t, p.network, `{"minHeight": 101, "nodes": [1, 0]}`)
	g.Eventually(func(g Gomega) {
		g.Expect(getNetwork(g, p.network).Status.Mining).To(HaveField("Height", HaveValue(BeEquivalentTo(101))))
	}, timeout, interval).Should(Succeed())
	p.waitRounds(2)
	g.Expect(p.doubles[0].Calls("generatetoaddress") + p.doubles[1].Calls("generatetoaddress")).To(BeZero())
}

// With an interval, the listed nodes take turns mining one block each, to the
// address given.
func TestMiningByInterval(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "interval", 2)
	p.startNodes(0, 2)
	p.expectWired(2)
	const address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

	setMining(t, p.network, `{"interval": "1s", "nodes": [0, 1], "address": "`+address+`"}`)
	g.Eventually(func(g Gomega) {
		g.Expect(p.doubles[0].Calls("generatetoaddress")).To(BeNumerically(">=", 2))
		g.Expect(p.doubles[1].Calls("generatetoaddress")).To(BeNumerically(">=", 2))
	}, timeout, interval).Should(Succeed())
	chain := p.doubles[0].BestChain()
	paid, _ := p.world.CoinbaseAddress(chain[len(chain)-1])
	g.Expect(paid).To(Equal(address))
	g.Expect(events(g, p.network)).NotTo(ContainElement(ContainSubstring("Mined")), "no event per block mined by interval")
	err := k8s.Get(context.Background(), keyOf(p.network, p.network.Name+"-mining-key"), &corev1.Secret{})
	g.Expect(err).To(MatchError(ContainSubstring("not found")), "no key generated when spec.mining.address is set")
}

// waitRounds waits until node 0 has been asked for its chain n more times: n rounds.
func (p *peerNet) waitRounds(n int) {
	p.t.Helper()
	from := p.doubles[0].Calls("getblockchaininfo")
	NewWithT(p.t).Eventually(func() int { return p.doubles[0].Calls("getblockchaininfo") }, timeout, interval).
		Should(BeNumerically(">=", from+n))
}

// expectNoMiningKey looks for the private key in the operator's log and the network's
// events and status.
func expectNoMiningKey(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, wif string) {
	t.Helper()
	g := NewWithT(t)
	var evs corev1.EventList
	g.Expect(k8s.List(context.Background(), &evs, client.InNamespace(n.Namespace))).To(Succeed())
	for where, text := range map[string]string{
		"the operator's log": operatorLog.String(),
		"events":             fmt.Sprint(evs.Items),
		"status":             fmt.Sprint(getNetwork(g, n).Status),
	} {
		g.Expect(strings.Contains(text, wif)).To(BeFalse(), "the mining key appears in %s", where)
	}
}

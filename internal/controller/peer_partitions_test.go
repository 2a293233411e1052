package controller

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// setPartitions replaces spec.partitions with a merge patch ("null" removes them).
func setPartitions(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, partitions string) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"partitions":%s}}`, partitions))
	NewWithT(t).Expect(k8s.Patch(context.Background(), n.DeepCopy(), client.RawPatch("application/merge-patch+json", patch))).To(Succeed())
}

// A live network is cut in two: the cross-group entries go, the connections close,
// each node bans the other group and renews the bans; each group mines its own chain
// to minHeight; removing the partitions lifts the bans and rewires, the shorter side
// reorganizes onto the longer chain, and every node ends Synced.
func TestPartitionsSplitMineAndHeal(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "split", 4)
	p.startNodes(0, 4)
	p.expectWired(4)
	groupOf := func(i int) int { return i / 2 }

	testkit.By(t, "partitions [[0, 1], [2, 3]] cut the network in two")
	setPartitions(t, p.network, `[[0, 1], [2, 3]]`)
	g.Eventually(func(g Gomega) {
		for i := range 4 {
			for j := range 4 {
				if groupOf(i) != groupOf(j) {
					g.Expect(p.world.Linked(p.doubles[i].P2PAddr(), p.doubles[j].P2PAddr())).To(BeFalse(), "%d and %d linked", i, j)
					g.Expect(p.doubles[i].AddedNodes()).NotTo(ContainElement(p.doubles[j].P2PAddr()))
					g.Expect(p.doubles[i].Bans()).To(ContainElement(p.ip(j)+"/32"), "node %d bans node %d", i, j)
				} else if i != j {
					g.Expect(p.world.Linked(p.doubles[i].P2PAddr(), p.doubles[j].P2PAddr())).To(BeTrue(), "%d and %d linked", i, j)
				}
			}
		}
		c := p.condition(g, bitcoinv1alpha1.ConditionPartitioned)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionConnected).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
	g.Expect(p.doubles[0].Calls("disconnectnode")).To(BeNumerically(">", 0))

	testkit.By(t, "the bans are renewed while the split lasts")
	setbans := p.doubles[0].Calls("setban")
	g.Eventually(func() int { return p.doubles[0].Calls("setban") }, timeout, interval).Should(BeNumerically(">=", setbans+2))
	g.Expect(p.doubles[0].Bans()).To(ConsistOf(p.ip(2)+"/32", p.ip(3)+"/32"))

	testkit.By(t, "each group mines apart to minHeight; one mines more")
	setMining(t, p.network, `{"minHeight": 5, "nodes": [0, 2]}`)
	g.Eventually(func(g Gomega) {
		for i := range 4 {
			g.Expect(p.doubles[i].BestChain()).To(HaveLen(6), "node %d", i)
		}
		g.Expect(events(g, p.network)).To(ContainElements(
			"Normal Mined: Mined 5 blocks on node 0; height 5", "Normal Mined: Mined 5 blocks on node 2; height 5"))
	}, timeout, interval).Should(Succeed())
	left := p.doubles[0].BestChain()
	g.Expect(p.doubles[2].BestChain()[5]).NotTo(Equal(left[5]), "two chains")
	longer := p.doubles[2].Mine(2, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
	g.Eventually(func(g Gomega) {
		c := p.condition(g, bitcoinv1alpha1.ConditionSynced)
		g.Expect(c.Reason).To(Equal("Diverged"))
		g.Expect(c.Message).To(Equal(fmt.Sprintf("The groups have different best blocks: [0 1] at height 5 (%s..); [2 3] at height 7 (%s..)", left[5][:8], longer[1][:8])))
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionPartitioned).Message).To(HaveSuffix("[2 3] at height 7 (" + longer[1][:8] + "..)"))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "removing the partitions heals: bans lifted, one chain, the shorter side reorganized")
	setPartitions(t, p.network, `null`)
	g.Eventually(func(g Gomega) {
		for i := range 4 {
			g.Expect(p.doubles[i].Bans()).To(BeEmpty(), "node %d", i)
			g.Expect(p.doubles[i].BestChain()).To(HaveLen(8), "node %d on the longer chain", i)
			g.Expect(p.doubles[i].BestChain()[7]).To(Equal(longer[1]))
		}
		g.Expect(p.world.Connected()).To(BeTrue())
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
		c := p.condition(g, bitcoinv1alpha1.ConditionPartitioned)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("NotRequested"))
		for _, n := range getNetwork(g, p.network).Status.Nodes {
			g.Expect(n.Reorgs).To(BeEquivalentTo(map[int32]int{0: 1, 1: 1}[n.Ordinal]), "node %d", n.Ordinal)
		}
	}, timeout, interval).Should(Succeed())
	evs := events(NewWithT(t), p.network)
	g.Expect(evs).To(ContainElement(fmt.Sprintf("Normal Reorganized: Node 0 switched from height 5 (%s..) to 7 (%s..): 5 blocks replaced", left[5][:8], longer[1][:8])))
	g.Expect(evs).To(ContainElement(HavePrefix("Normal Reorganized: Node 1 switched from height 5")))
}

// A node down when the split is healed keeps its bans in banlist.json; once it
// answers again, the operator lifts them.
func TestHealingLiftsTheBansOfANodeThatWasDown(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "downheal", 2)
	p.startNodes(0, 2)
	p.expectWired(2)
	setPartitions(t, p.network, `[[0], [1]]`)
	g.Eventually(func(g Gomega) {
		g.Expect(p.doubles[1].Bans()).To(ConsistOf(p.ip(0) + "/32"))
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionPartitioned).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())

	p.doubles[1].Stop()
	setPartitions(t, p.network, `null`)
	g.Eventually(func(g Gomega) {
		g.Expect(p.doubles[0].Bans()).To(BeEmpty())
		g.Expect(p.condition(g, bitcoinv1alpha1.ConditionPartitioned).Reason).To(Equal("NotRequested"))
	}, timeout, interval).Should(Succeed())
	g.Expect(p.doubles[1].Bans()).To(ConsistOf(p.ip(0)+"/32"), "down, it could not be told")

	setbans := p.doubles[1].Calls("setban")
	g.Expect(p.doubles[1].Restart()).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(p.doubles[1].Bans()).To(BeEmpty())
		g.Expect(p.doubles[1].Calls("setban")).To(BeNumerically(">", setbans), "lifted, not left to expire")
		g.Expect(p.world.Linked(p.doubles[0].P2PAddr(), p.doubles[1].P2PAddr())).To(BeTrue())
	}, timeout, interval).Should(Succeed())
	p.expectWired(2)
}

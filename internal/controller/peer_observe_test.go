package controller

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const regtestGenesisHash = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"

// callsOf counts the calls of method over every double of the network.
func (p *peerNet) callsOf(method string) int {
	total := 0
	for _, d := range p.doubles {
		total += d.Calls(method)
	}
	return total
}

// status.nodes shows each node's tip, user agent and peer directions; a settled
// network costs no call beyond the three of every round, getnetworkinfo comes once per
// pod incarnation, and a node whose best chain drops blocks is a Reorganized event and
// a count.
func TestNodeStatusAndReorgs(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "observe", 3)
	p.startNodes(0, 3)
	p.expectWired(3)

	testkit.By(t, "status.nodes shows tip, subversion and peer directions")
	g.Eventually(func(g Gomega) {
		nodes := getNetwork(g, p.network).Status.Nodes
		g.Expect(nodes).To(HaveLen(3))
		for _, n := range nodes {
			g.Expect(n.BestBlockHash).To(Equal(regtestGenesisHash), "node %d", n.Ordinal)
			g.Expect(n.Subversion).To(Equal("/Satoshi:28.0.0/"))
			g.Expect(n.InboundPeers).To(HaveValue(BeEquivalentTo(2)), "a full mesh of 3: 2 in")
			g.Expect(n.OutboundPeers).To(HaveValue(BeEquivalentTo(2)), "and 2 out")
			g.Expect(n.Reorgs).To(BeZero())
		}
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "settled, rounds make only their three calls per node")
	infos, hashes, tips := p.callsOf("getnetworkinfo"), p.callsOf("getblockhash"), p.callsOf("getchaintips")
	g.Expect(infos).To(Equal(3), "once per node")
	p.waitRounds(3)
	g.Expect(p.callsOf("getnetworkinfo")).To(Equal(infos))
	g.Expect(p.callsOf("getblockhash")).To(Equal(hashes))
	g.Expect(p.callsOf("getchaintips")).To(Equal(tips))
	g.Expect(p.callsOf("listbanned") + p.callsOf("setban")).To(BeZero(), "no bans to look after without partitions")

	testkit.By(t, "a tip that grows costs one getblockhash per node, and is no reorg")
	mined := p.doubles[0].Mine(3, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
	g.Eventually(func(g Gomega) {
		for _, n := range getNetwork(g, p.network).Status.Nodes {
			g.Expect(n.BestBlockHash).To(Equal(mined[2]), "node %d", n.Ordinal)
		}
	}, timeout, interval).Should(Succeed())
	p.waitRounds(2)
	g.Expect(p.callsOf("getblockhash")).To(Equal(hashes + 3))
	g.Expect(p.callsOf("getchaintips")).To(Equal(tips))

	testkit.By(t, "a node whose chain drops blocks it had reorganizes")
	p.doubles[2].SetChain(5, fmt.Sprintf("%064x", 5))
	want := fmt.Sprintf("Normal Reorganized: Node 2 switched from height 3 (%s..) to 5 (00000000..): 3 blocks replaced", mined[2][:8])
	g.Eventually(func(g Gomega) {
		g.Expect(events(g, p.network)).To(ContainElement(want))
		for _, n := range getNetwork(g, p.network).Status.Nodes {
			g.Expect(n.Reorgs).To(BeEquivalentTo(map[int32]int{2: 1}[n.Ordinal]), "node %d", n.Ordinal)
		}
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "a restarted bitcoind is asked for getnetworkinfo again")
	before := p.doubles[1].Calls("getnetworkinfo")
	p.doubles[1].Stop()
	g.Expect(p.doubles[1].Restart()).To(Succeed())
	pod := p.pods[1].DeepCopy()
	g.Expect(k8s.Get(context.Background(), keyOf(p.network, pod.Name), pod)).To(Succeed())
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "bitcoind", RestartCount: 1, Ready: true}}
	g.Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())
	g.Eventually(func() int { return p.doubles[1].Calls("getnetworkinfo") }, timeout, interval).Should(Equal(before + 1))
	p.waitRounds(2)
	g.Expect(p.doubles[1].Calls("getnetworkinfo")).To(Equal(before + 1))
}

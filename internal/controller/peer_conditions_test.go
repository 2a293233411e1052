package controller

import (
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

func testReadyNodes(n int) []readyNode {
	nodes := make([]readyNode, n)
	for i := range nodes {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		nodes[i] = readyNode{BitcoinNetworkNode: bitcoinv1alpha1.BitcoinNetworkNode{
			Ordinal: int32(i), Ready: true, IP: ip, NodeName: fmt.Sprintf("n-sts-%d", i)},
			rpc: ip + ":18443", p2p: ip + ":18444"}
	}
	return nodes
}

// answersWithLinks answers for nodes where each pair (a, b) is a connection from a to
// b: a shows b's P2P address, b shows a's IP with an ephemeral port.
func answersWithLinks(nodes []readyNode, hash string, pairs ...[2]int) map[int32]answer {
	answers := map[int32]answer{}
	for _, n := range nodes {
		answers[n.Ordinal] = answer{chain: bitcoin.BlockchainInfo{Blocks: 5, BestBlockHash: hash}}
	}
	for _, p := range pairs {
		a, b := answers[int32(p[0])], answers[int32(p[1])]
		a.peers = append(a.peers, bitcoin.Peer{Addr: nodes[p[1]].p2p})
		b.peers = append(b.peers, bitcoin.Peer{Addr: nodes[p[0]].IP + ":51234", Inbound: true})
		answers[int32(p[0])], answers[int32(p[1])] = a, b
	}
	return answers
}

func TestConnectedCondition(t *testing.T) {
	network := &bitcoinv1alpha1.BitcoinNetwork{}
	nodes := testReadyNodes(4)
	for name, tc := range map[string]struct {
		nodes   []readyNode
		answers map[int32]answer
		status  metav1.ConditionStatus
		message string
	}{
		"no ready node": {nil, nil, metav1.ConditionFalse, "No node is ready"},
		"one node":      {nodes[:1], answersWithLinks(nodes[:1], "h"), metav1.ConditionTrue, "The only ready node has no other to connect to"},
		"a chain, seen from either end": {nodes, answersWithLinks(nodes, "h", [2]int{0, 1}, [2]int{2, 1}, [2]int{3, 2}),
			metav1.ConditionTrue, "The 4 ready nodes form one P2P network"},
		"two islands": {nodes, answersWithLinks(nodes, "h", [2]int{0, 1}, [2]int{2, 3}),
			metav1.ConditionFalse, "Nodes n-sts-2, n-sts-3 have no P2P path to n-sts-0 yet"},
		"a silent node": {nodes[:2], map[int32]answer{0: {}, 1: {err: errors.New("refused")}},
			metav1.ConditionUnknown, "Node n-sts-1 does not answer RPC (see the RPCFailed events)"},
		"peers outside the network do not connect it": {nodes[:2], map[int32]answer{
			0: {peers: []bitcoin.Peer{{Addr: "127.9.9.9:18444"}}}, 1: {}},
			metav1.ConditionFalse, "Node n-sts-1 has no P2P path to n-sts-0 yet"},
	} {
		t.Run(name, func(t *testing.T) {
			c := connectedCondition(network, tc.nodes, tc.answers, split{})
			g := NewWithT(t)
			g.Expect(c.Type).To(Equal(bitcoinv1alpha1.ConditionConnected))
			g.Expect(c.Status).To(Equal(tc.status))
			g.Expect(c.Message).To(Equal(tc.message))
			if c.Status == metav1.ConditionFalse && len(tc.nodes) > 0 {
				g.Expect(c.Reason).To(Equal("NoP2PPath"), "never Partitioned, the reason of a requested split")
			}
		})
	}
}

func TestSyncedCondition(t *testing.T) {
	g := NewWithT(t)
	network := &bitcoinv1alpha1.BitcoinNetwork{}
	nodes := testReadyNodes(3)
	same := answersWithLinks(nodes, "abc")
	c := syncedCondition(network, nodes, same, split{})
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(c.Message).To(Equal("The 3 ready nodes are at height 5 (abc)"))

	same[2] = answer{chain: bitcoin.BlockchainInfo{Blocks: 4, BestBlockHash: "old"}}
	c = syncedCondition(network, nodes, same, split{})
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(Equal("n-sts-0 is at height 5 (abc); n-sts-2 at height 4"))
}

func splitNetwork(nodes int32, groups ...[]bitcoinv1alpha1.NodeOrdinal) *bitcoinv1alpha1.BitcoinNetwork {
	return &bitcoinv1alpha1.BitcoinNetwork{Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: nodes, Partitions: func() []bitcoinv1alpha1.PartitionGroup {
		var out []bitcoinv1alpha1.PartitionGroup
		for _, g := range groups {
			out = append(out, g)
		}
		return out
	}()}}
}

func TestSplitOf(t *testing.T) {
	g := NewWithT(t)
	g.Expect(splitOf(splitNetwork(4)).requested()).To(BeFalse())
	s := splitOf(splitNetwork(5, []bitcoinv1alpha1.NodeOrdinal{3, 1}, []bitcoinv1alpha1.NodeOrdinal{7}))
	g.Expect(s.groups).To(Equal([][]int32{{3, 1}, {0, 2, 4}}), "ordinals beyond spec.nodes ignored, the rest form one more group")
	g.Expect(s.apart(1, 3)).To(BeFalse())
	g.Expect(s.apart(1, 0)).To(BeTrue())
	g.Expect(splitOf(splitNetwork(2, []bitcoinv1alpha1.NodeOrdinal{0, 1})).groups).To(HaveLen(1), "no empty group")
}

func TestConditionsWhileSplit(t *testing.T) {
	g := NewWithT(t)
	nodes := testReadyNodes(4)
	network := splitNetwork(4, []bitcoinv1alpha1.NodeOrdinal{0, 1}, []bitcoinv1alpha1.NodeOrdinal{2, 3})
	s := splitOf(network)

	apart := answersWithLinks(nodes, "aaaa1111bbbb", [2]int{0, 1}, [2]int{2, 3})
	for _, o := range []int32{2, 3} {
		a := apart[o]
		a.chain = bitcoin.BlockchainInfo{Blocks: 7, BestBlockHash: "cccc2222dddd"}
		apart[o] = a
	}
	c := partitionedCondition(network, nodes, apart, s)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(c.Message).To(Equal("Split as requested: [0 1] at height 5 (aaaa1111..); [2 3] at height 7 (cccc2222..)"))
	c = connectedCondition(network, nodes, apart, s)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "each group is connected")
	g.Expect(c.Message).To(Equal("The 4 ready nodes form one P2P network per group: [0 1] [2 3]"))
	c = syncedCondition(network, nodes, apart, s)
	g.Expect(c.Reason).To(Equal("Diverged"))
	g.Expect(c.Message).To(Equal("The groups have different best blocks: [0 1] at height 5 (aaaa1111..); [2 3] at height 7 (cccc2222..)"))

	across := answersWithLinks(nodes, "h", [2]int{0, 1}, [2]int{2, 3}, [2]int{1, 2})
	c = partitionedCondition(network, nodes, across, s)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(Equal("Nodes of different groups are still connected: 1-2"))

	lone := answersWithLinks(nodes, "h", [2]int{0, 1}, [2]int{1, 2})
	c = connectedCondition(network, nodes, lone, s)
	g.Expect(c.Reason).To(Equal("NoP2PPath"))
	g.Expect(c.Message).To(Equal("Node n-sts-3 has no P2P path to n-sts-2 yet"), "a link across groups is no path within one")

	c = partitionedCondition(&bitcoinv1alpha1.BitcoinNetwork{}, nodes, apart, split{})
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal("NotRequested"))
}

// A condition about many nodes names ten and counts the rest: a message holds at most
// 32 KiB, which the names of 1,000 nodes behind a block would pass.
func TestConditionsOfAThousandNodesNameTenOfThem(t *testing.T) {
	g := NewWithT(t)
	network := &bitcoinv1alpha1.BitcoinNetwork{}
	nodes := testReadyNodes(1000)
	answers := map[int32]answer{}
	for _, n := range nodes {
		answers[n.Ordinal] = answer{chain: bitcoin.BlockchainInfo{Blocks: 4, BestBlockHash: "old"}}
	}
	answers[0] = answer{chain: bitcoin.BlockchainInfo{Blocks: 5, BestBlockHash: "new"}}
	c := syncedCondition(network, nodes, answers, split{})
	g.Expect(c.Reason).To(Equal("BestBlocksDiffer"))
	g.Expect(c.Message).To(HaveSuffix("n-sts-10 at height 4, and 989 more"))

	for _, n := range nodes {
		answers[n.Ordinal] = answer{err: errors.New("connection refused")}
	}
	c = connectedCondition(network, nodes, answers, split{})
	g.Expect(c.Reason).To(Equal("NodesUnreachable"))
	g.Expect(c.Message).To(Equal("Nodes n-sts-0, n-sts-1, n-sts-2, n-sts-3, n-sts-4, n-sts-5, n-sts-6, n-sts-7, n-sts-8, n-sts-9, and 990 more do not answer RPC (see the RPCFailed events)"))
}

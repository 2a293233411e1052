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
			c := connectedCondition(network, tc.nodes, tc.answers)
			g := NewWithT(t)
			g.Expect(c.Type).To(Equal(bitcoinv1alpha1.ConditionConnected))
			g.Expect(c.Status).To(Equal(tc.status))
			g.Expect(c.Message).To(Equal(tc.message))
		})
	}
}

func TestSyncedCondition(t *testing.T) {
	g := NewWithT(t)
	network := &bitcoinv1alpha1.BitcoinNetwork{}
	nodes := testReadyNodes(3)
	same := answersWithLinks(nodes, "abc")
	c := syncedCondition(network, nodes, same)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(c.Message).To(Equal("The 3 ready nodes are at height 5 (abc)"))

	same[2] = answer{chain: bitcoin.BlockchainInfo{Blocks: 4, BestBlockHash: "old"}}
	c = syncedCondition(network, nodes, same)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Message).To(Equal("n-sts-0 is at height 5 (abc); n-sts-2 at height 4"))
}

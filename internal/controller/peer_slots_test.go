package controller

import (
	"fmt"
	"slices"
	"testing"

	. "github.com/onsi/gomega"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func readyNodesOf(ordinals ...int32) []readyNode {
	var ready []readyNode
	for _, o := range ordinals {
		n := readyNode{p2p: fmt.Sprintf("127.0.%d.%d:18444", o/250, o%250+1)}
		n.Ordinal = o
		ready = append(ready, n)
	}
	return ready
}

func changedLists(before, after map[string][]string) int {
	changed := 0
	for node, added := range after {
		if old, ok := before[node]; ok && !slices.Equal(old, added) {
			changed++
		}
	}
	return changed
}

// The peer reconciler lays the topology over the ordinals spec.nodes asks for, and
// over each group's listed ordinals when partitioned: a node that turns ready late
// (a Parallel StatefulSet's) changes a few other nodes' entries, not all of them.
func TestWantedPeersKeepTheirSlotsAsNodesTurnReady(t *testing.T) {
	g := NewWithT(t)
	var all, allBut5 []int32
	for o := range int32(100) {
		all = append(all, o)
		if o != 5 {
			allBut5 = append(allBut5, o)
		}
	}
	before := wantedPeers(readyNodesOf(allBut5...), split{}, 100)
	after := wantedPeers(readyNodesOf(all...), split{}, 100)
	g.Expect(changedLists(before, after)).To(BeNumerically("<=", 8))

	network := &bitcoinv1alpha1.BitcoinNetwork{Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 100,
		Partitions: []bitcoinv1alpha1.PartitionGroup{{50, 40, 30, 20, 10, 5, 1, 2, 3, 4, 6}}}}
	s := splitOf(network)
	before = wantedPeers(readyNodesOf(allBut5...), s, 100)
	after = wantedPeers(readyNodesOf(all...), s, 100)
	g.Expect(changedLists(before, after)).To(BeNumerically("<=", 8))
	for node, added := range after {
		for _, peer := range added {
			a, b := ordinalOf(node), ordinalOf(peer)
			g.Expect(s.apart(a, b)).To(BeFalse(), "%d adds %d across groups", a, b)
		}
	}
}

func ordinalOf(p2p string) int32 {
	var third, fourth int32
	_, _ = fmt.Sscanf(p2p, "127.0.%d.%d:18444", &third, &fourth)
	return third*250 + fourth - 1
}

// Package topology decides which peers each bitcoind adds with addnode.
//
// Bitcoin Core keeps at most 8 addnode connections open
// (MAX_ADDNODE_CONNECTIONS in src/net.h) and leaves further entries
// unconnected, so no node gets more than 8 peers to add.
//
// The graph is laid over the slots of the nodes the network asks for (its
// ordinals), not over the nodes that happen to be ready: a node's peers depend
// on its slot, so nodes turning ready out of order (a StatefulSet with
// podManagementPolicy Parallel) do not reshuffle everyone's list.
//
// Up to 9 slots form a full mesh: each adds the n-1 ≤ 8 others.
//
// More slots form a circulant graph: slot i adds i + b^k (mod n) for every
// b^k < n, where the base b is the smallest integer ≥ 2 with b^8 ≥ n (2 up to
// 256 slots, 3 up to 6561). That is at most 8 entries, all distinct and none
// the node itself, since 0 < b^k < n. With every slot ready the graph is
// connected, and its diameter is at most ⌈log_b n⌉·⌈(b-1)/2⌉: the distance
// between two ordinals written in balanced base b takes one hop, an added peer
// forwards or an inbound one backwards, per unit of each digit. That is
// ⌈log2 n⌉ up to 256 nodes and 8 up to 6561.
//
// A ready node whose target slot is not ready skips that entry, except for
// the entry at offset 1, which goes to the next ready slot instead (in cyclic
// order). So the ready nodes always form a ring, and are connected whatever
// is ready; every node keeps at most 8 entries and is added by at most 8
// others (its ring predecessor, and i - b^k for b^k ≥ 2); and a node that
// turns ready or stops being ready changes the lists of at most 8 other
// nodes, by one entry each: those b^k behind it, and its ring predecessor.
package topology

import (
	"slices"
	"sort"
)

// fullMeshMax is the largest network in which every node can add all others
// within Bitcoin Core's 8 addnode connections.
const fullMeshMax = 9

// Peers returns, for each ready node, the sorted P2P addresses it should add.
// slots is the number of nodes the network asks for; ready maps the slot of
// each ready node (0 to slots-1; a larger one widens the slots to hold it) to
// its P2P address, all distinct.
func Peers(slots int, ready map[int]string) map[string][]string {
	order := make([]int, 0, len(ready))
	for slot := range ready {
		order = append(order, slot)
		slots = max(slots, slot+1)
	}
	slices.Sort(order)
	offsets := offsets(slots)
	peers := make(map[string][]string, len(ready))
	for _, i := range order {
		added := make([]string, 0, len(offsets))
		for _, offset := range offsets {
			target := (i + offset) % slots
			if _, ok := ready[target]; !ok {
				if offset != 1 {
					continue
				}
				target = next(order, target)
			}
			if target != i && !slices.Contains(added, ready[target]) {
				added = append(added, ready[target])
			}
		}
		slices.Sort(added)
		peers[ready[i]] = added
	}
	return peers
}

// next returns the first slot in order at or after slot, wrapping around.
func next(order []int, slot int) int {
	at := sort.SearchInts(order, slot)
	if at == len(order) {
		at = 0
	}
	return order[at]
}

// offsets returns how far ahead in ordinal order each node's peers are.
func offsets(n int) []int {
	var offsets []int
	if n <= fullMeshMax {
		for offset := 1; offset < n; offset++ {
			offsets = append(offsets, offset)
		}
		return offsets
	}
	base := 2
	for pow8(base) < n {
		base++
	}
	for offset := 1; offset < n; offset *= base {
		offsets = append(offsets, offset)
	}
	return offsets
}

func pow8(b int) int {
	b *= b
	b *= b
	return b * b
}

// Package topology decides which peers each bitcoind adds with addnode.
//
// Bitcoin Core keeps at most 8 addnode connections open
// (MAX_ADDNODE_CONNECTIONS in src/net.h) and leaves further entries
// unconnected, so no node gets more than 8 peers to add.
//
// Up to 9 nodes form a full mesh: each adds the n-1 ≤ 8 others.
//
// Larger networks form a circulant graph over the ordinals: node i adds
// i + b^k (mod n) for every b^k < n, where the base b is the smallest
// integer ≥ 2 with b^8 ≥ n (2 up to 256 nodes, 3 up to 6561). That is at most
// 8 entries, all distinct and none the node itself, since 0 < b^k < n. The
// graph is connected, and its diameter is at most ⌈log_b n⌉·⌈(b-1)/2⌉: the
// distance between two ordinals written in balanced base b takes one hop, an
// added peer forwards or an inbound one backwards, per unit of each digit.
// That is ⌈log2 n⌉ up to 256 nodes and 8 up to 6561.
package topology

import "slices"

// fullMeshMax is the largest network in which every node can add all others
// within Bitcoin Core's 8 addnode connections.
const fullMeshMax = 9

// Peers returns, for each of the distinct P2P addresses of the ready nodes
// given in ordinal order, the sorted addresses it should add.
func Peers(nodes []string) map[string][]string {
	offsets := offsets(len(nodes))
	peers := make(map[string][]string, len(nodes))
	for i, node := range nodes {
		added := make([]string, 0, len(offsets))
		for _, offset := range offsets {
			added = append(added, nodes[(i+offset)%len(nodes)])
		}
		slices.Sort(added)
		peers[node] = added
	}
	return peers
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

package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/topology"
)

// split is how spec.partitions divides the network: groups of ordinals, each wired
// alone and kept from the others. Without partitions there is one group of all.
type split struct {
	groups [][]int32     // nil without partitions
	of     map[int32]int // ordinal to its group's index
}

// splitOf returns the network's split: spec.partitions' groups with the ordinals at
// or above spec.nodes left out (so that scaling down never fails on them), and one
// more group of the nodes in none. Empty groups are dropped.
func splitOf(network *bitcoinv1alpha1.BitcoinNetwork) split {
	s := split{of: map[int32]int{}}
	if len(network.Spec.Partitions) == 0 {
		return s
	}
	for _, g := range network.Spec.Partitions {
		var group []int32
		for _, o := range g {
			if int32(o) < network.Spec.Nodes {
				group = append(group, int32(o))
			}
		}
		s.add(group)
	}
	var rest []int32
	for o := range network.Spec.Nodes {
		if _, ok := s.of[o]; !ok {
			rest = append(rest, o)
		}
	}
	s.add(rest)
	return s
}

func (s *split) add(group []int32) {
	if len(group) == 0 {
		return
	}
	for _, o := range group {
		s.of[o] = len(s.groups)
	}
	s.groups = append(s.groups, group)
}

// requested tells whether the network is to be split.
func (s split) requested() bool { return len(s.groups) > 0 }

// apart tells whether two nodes are to be kept apart.
func (s split) apart(a, b int32) bool { return s.requested() && s.of[a] != s.of[b] }

// String is the split as a round's key and the conditions show it: "[0 1] [2 3]".
func (s split) String() string {
	parts := make([]string, len(s.groups))
	for i, g := range s.groups {
		parts[i] = fmt.Sprint(g)
	}
	return strings.Join(parts, " ")
}

// grouped returns the ready nodes by group, in the split's order; one group of all
// without partitions.
func (s split) grouped(ready []readyNode) [][]readyNode {
	if !s.requested() {
		return [][]readyNode{ready}
	}
	out := make([][]readyNode, len(s.groups))
	for _, n := range ready {
		if g, ok := s.of[n.Ordinal]; ok {
			out[g] = append(out[g], n)
		}
	}
	return out
}

// wantedPeers is each ready node's addnode entries: the topology of its group alone,
// laid over the slots of the group's nodes that spec.nodes asks for (the ordinals
// without partitions, the group's listed ordinals with them), so that nodes turning
// ready out of order do not reshuffle the others' entries.
func wantedPeers(ready []readyNode, s split, nodes int32) map[string][]string {
	want := map[string][]string{}
	for g, group := range s.grouped(ready) {
		slots, slotOf := int(nodes), func(o int32) int { return int(o) }
		if s.requested() {
			members := s.groups[g]
			slots, slotOf = len(members), func(o int32) int { return slices.Index(members, o) }
		}
		addrs := make(map[int]string, len(group))
		for _, n := range group {
			addrs[slotOf(n.Ordinal)] = n.p2p
		}
		for k, v := range topology.Peers(slots, addrs) {
			want[k] = v
		}
	}
	return want
}

// banSeconds is how long a partition's bans last: a few rounds. Bans live in
// banlist.json on the node's volume, so one the operator cannot lift (its node was
// down at healing, or came back with another IP) must end by itself soon.
func (r *PeerReconciler) banSeconds() int64 {
	return int64(max(4*r.Period, 10*time.Second) / time.Second)
}

// keepApart makes each node that answered ban the IPs of the other groups' ready
// nodes (renewing a ban when half its time is gone), lift its bans of the network's
// other IPs, and disconnect its peers in other groups. Bans on both sides are what
// keeps groups apart: Core refuses inbound connections from a banned IP, also those
// an addnode entry or address relay would make, but dials an added address even when
// banned. Without partitions it runs only to lift the bans of a split that ended,
// once: it tells whether any ban of the network's IPs may remain.
func (r *PeerReconciler) keepApart(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, round *peerRound,
	links map[types.UID]*rpcLink, bansLeft bool) bool {
	s := round.split
	if !s.requested() && !bansLeft {
		return false
	}
	left := false
	for _, n := range round.ready {
		a := round.answers[n.Ordinal]
		if a.err != nil || a.skipped {
			left = true // not known this round
			continue
		}
		var err error
		r.rounds.call(ctx, func() { err = r.banOthers(ctx, links[n.pod].client, n, round.ready, a.peers, s) })
		if err != nil {
			left = true
			r.wiringFailed(ctx, network, n, links[n.pod], err, round.creds)
		}
	}
	return s.requested() || left
}

// banOthers brings one node's bans and connections to the split.
func (r *PeerReconciler) banOthers(ctx context.Context, c *bitcoin.Client, n readyNode, ready []readyNode, peers []bitcoin.Peer, s split) error {
	ban, ours := map[string]bool{}, map[string]bool{}
	for _, m := range ready {
		ours[m.IP] = true
		if s.apart(n.Ordinal, m.Ordinal) {
			ban[m.IP] = true
		}
	}
	current, err := c.ListBanned(ctx)
	if err != nil {
		return err
	}
	seconds := r.banSeconds()
	fresh := map[string]bool{}
	for _, b := range current {
		ip, _, _ := strings.Cut(b.Address, "/")
		switch {
		case ban[ip] && b.TimeRemaining > seconds/2:
			fresh[ip] = true
		case ban[ip] || ours[ip]: // to renew, or a ban of ours the split no longer wants
			if err := c.SetBan(ctx, ip, true, 0); err != nil && !bitcoin.HasCode(err, bitcoin.CodeInvalidIPOrSubnet) {
				return err
			}
		}
	}
	for _, ip := range sortedKeys(ban) {
		if fresh[ip] {
			continue
		}
		if err := c.SetBan(ctx, ip, false, seconds); err != nil && !bitcoin.HasCode(err, bitcoin.CodeNodeAlreadyAdded) {
			return err
		}
	}
	for _, p := range peers {
		if host, _, err := net.SplitHostPort(p.Addr); err == nil && ban[host] {
			if err := c.DisconnectNode(ctx, p.Addr); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package controller

import (
	"fmt"
	"net"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// connectedCondition says whether the P2P connections the ready nodes report link
// them all (each group alone while partitioned): an edge joins two nodes when either
// lists a connection with the other's IP (an inbound connection shows the dialer's IP
// with a port of its own). A node with no path is NoP2PPath, never to be confused
// with a split the user asked for (Partitioned).
func connectedCondition(network *bitcoinv1alpha1.BitcoinNetwork, nodes []readyNode, answers map[int32]answer, s split) metav1.Condition {
	set := func(status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return condition(network, bitcoinv1alpha1.ConditionConnected, status, reason, message)
	}
	if c, unknown := unobserved(set, nodes, answers); unknown {
		return c
	}
	links := p2pLinks(nodes, answers)
	var apart, firsts []string
	for _, group := range s.grouped(nodes) {
		if len(group) == 0 {
			continue
		}
		within := map[int32][]int32{}
		for from, tos := range links {
			for _, to := range tos {
				if !s.apart(from, to) {
					within[from] = append(within[from], to)
				}
			}
		}
		reached := reachable(group[0].Ordinal, within)
		for _, n := range group {
			if !reached[n.Ordinal] {
				apart = append(apart, n.NodeName)
				if len(firsts) == 0 || firsts[len(firsts)-1] != group[0].NodeName {
					firsts = append(firsts, group[0].NodeName)
				}
			}
		}
	}
	if len(apart) > 0 {
		return set(metav1.ConditionFalse, "NoP2PPath", fmt.Sprintf("%s no P2P path to %s yet",
			subject(apart, "has", "have"), strings.Join(firsts, " or ")))
	}
	switch {
	case s.requested():
		return set(metav1.ConditionTrue, "Connected", fmt.Sprintf("The %d ready nodes form one P2P network per group: %s", len(nodes), s))
	case len(nodes) == 1:
		return set(metav1.ConditionTrue, "Connected", "The only ready node has no other to connect to")
	}
	return set(metav1.ConditionTrue, "Connected", fmt.Sprintf("The %d ready nodes form one P2P network", len(nodes)))
}

// p2pLinks returns, for each ready node, the ready nodes it reports a connection
// with, both ways.
func p2pLinks(nodes []readyNode, answers map[int32]answer) map[int32][]int32 {
	ordinalOf := map[string]int32{}
	for _, n := range nodes {
		ordinalOf[n.IP] = n.Ordinal
	}
	links := map[int32][]int32{}
	for _, n := range nodes {
		for _, p := range answers[n.Ordinal].peers {
			if host, _, err := net.SplitHostPort(p.Addr); err == nil {
				if other, ok := ordinalOf[host]; ok && other != n.Ordinal {
					links[n.Ordinal] = append(links[n.Ordinal], other)
					links[other] = append(links[other], n.Ordinal)
				}
			}
		}
	}
	return links
}

// syncedCondition says whether every ready node reports the same best block. While
// partitioned, groups that agree within but not with each other are Diverged, as
// asked; nodes that disagree within a group are BestBlocksDiffer.
func syncedCondition(network *bitcoinv1alpha1.BitcoinNetwork, nodes []readyNode, answers map[int32]answer, s split) metav1.Condition {
	set := func(status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return condition(network, bitcoinv1alpha1.ConditionSynced, status, reason, message)
	}
	if c, unknown := unobserved(set, nodes, answers); unknown {
		return c
	}
	var behind []string
	var firsts []readyNode
	for _, group := range s.grouped(nodes) {
		if len(group) == 0 {
			continue
		}
		firsts = append(firsts, group[0])
		first := answers[group[0].Ordinal].chain
		for _, n := range group[1:] {
			if c := answers[n.Ordinal].chain; c.BestBlockHash != first.BestBlockHash {
				behind = append(behind, fmt.Sprintf("%s at height %d", n.NodeName, c.Blocks))
			}
		}
	}
	if len(behind) > 0 {
		first := answers[firsts[0].Ordinal].chain
		return set(metav1.ConditionFalse, "BestBlocksDiffer", fmt.Sprintf("%s is at height %d (%s); %s",
			firsts[0].NodeName, first.Blocks, first.BestBlockHash, listSome(behind, ", ")))
	}
	first := answers[firsts[0].Ordinal].chain
	for _, f := range firsts[1:] {
		if answers[f.Ordinal].chain.BestBlockHash != first.BestBlockHash {
			return set(metav1.ConditionFalse, "Diverged", "The groups have different best blocks: "+groupTips(nodes, answers, s))
		}
	}
	if len(nodes) == 1 {
		return set(metav1.ConditionTrue, "Synced", fmt.Sprintf("The only ready node is at height %d (%s)", first.Blocks, first.BestBlockHash))
	}
	return set(metav1.ConditionTrue, "Synced", fmt.Sprintf("The %d ready nodes are at height %d (%s)",
		len(nodes), first.Blocks, first.BestBlockHash))
}

// groupTips lists the groups with the height and best block of each group's first
// ready node: "[0 1] at height 5 (3f1c..); [2 3] at height 7 (9a02..)".
func groupTips(nodes []readyNode, answers map[int32]answer, s split) string {
	var parts []string
	for i, group := range s.grouped(nodes) {
		if len(group) == 0 {
			parts = append(parts, fmt.Sprintf("%v with no ready node", s.groups[i]))
			continue
		}
		c := answers[group[0].Ordinal].chain
		parts = append(parts, fmt.Sprintf("%v at height %d (%s)", s.groups[i], c.Blocks, shortHash(c.BestBlockHash)))
	}
	return strings.Join(parts, "; ")
}

// reasonNotRequested is Partitioned's reason when spec.partitions is empty.
const reasonNotRequested = "NotRequested"

// partitionedCondition says whether the nodes are split as spec.partitions asks: no
// ready node reports a connection with a node of another group.
func partitionedCondition(network *bitcoinv1alpha1.BitcoinNetwork, nodes []readyNode, answers map[int32]answer, s split) metav1.Condition {
	set := func(status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return condition(network, bitcoinv1alpha1.ConditionPartitioned, status, reason, message)
	}
	if !s.requested() {
		return set(metav1.ConditionFalse, reasonNotRequested, "spec.partitions is empty: the nodes form one network")
	}
	if c, unknown := unobserved(set, nodes, answers); unknown {
		return c
	}
	var across []string
	for from, tos := range p2pLinks(nodes, answers) {
		for _, to := range tos {
			if from < to && s.apart(from, to) {
				across = append(across, fmt.Sprintf("%d-%d", from, to))
			}
		}
	}
	if len(across) > 0 {
		slices.Sort(across)
		across = slices.Compact(across)
		return set(metav1.ConditionFalse, "Splitting", "Nodes of different groups are still connected: "+listSome(across, ", "))
	}
	return set(metav1.ConditionTrue, "Split", "Split as requested: "+groupTips(nodes, answers, s))
}

// unobserved returns the condition for a network whose nodes cannot tell: none is
// ready, or some ready node did not answer.
func unobserved(set func(metav1.ConditionStatus, string, string) metav1.Condition, nodes []readyNode, answers map[int32]answer) (metav1.Condition, bool) {
	if len(nodes) == 0 {
		return set(metav1.ConditionFalse, "NoReadyNodes", "No node is ready"), true
	}
	if silent := unanswered(nodes, answers); len(silent) > 0 {
		return set(metav1.ConditionUnknown, "NodesUnreachable",
			fmt.Sprintf("%s not answer RPC (see the RPCFailed events)", subject(silent, "does", "do"))), true
	}
	return metav1.Condition{}, false
}

func unanswered(nodes []readyNode, answers map[int32]answer) []string {
	var names []string
	for _, n := range nodes {
		if a, ok := answers[n.Ordinal]; !ok || a.err != nil {
			names = append(names, n.NodeName)
		}
	}
	return names
}

// subject starts a sentence about some nodes: "Node a does", "Nodes a, b do".
func subject(names []string, singular, plural string) string {
	if len(names) == 1 {
		return "Node " + names[0] + " " + singular
	}
	return "Nodes " + listSome(names, ", ") + " " + plural
}

// reachable returns the nodes reachable from start.
func reachable(start int32, links map[int32][]int32) map[int32]bool {
	seen := map[int32]bool{start: true}
	queue := []int32{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, next := range links[n] {
			if !seen[next] {
				seen[next] = true
				queue = append(queue, next)
			}
		}
	}
	return seen
}

// maxListed bounds the nodes a condition's message names: a condition's message holds
// at most 32 KiB, and a network of 1,000 nodes whose nodes are all behind after a
// block would need 60.
const maxListed = 10

// listSome joins the first maxListed items and says how many more there are.
func listSome(items []string, sep string) string {
	if len(items) <= maxListed {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:maxListed], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-maxListed)
}

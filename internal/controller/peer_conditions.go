package controller

import (
	"fmt"
	"net"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// connectedCondition says whether the P2P connections the ready nodes report link
// them all: an edge joins two nodes when either lists a connection with the other's
// IP (an inbound connection shows the dialer's IP with a port of its own).
func connectedCondition(network *bitcoinv1alpha1.BitcoinNetwork, nodes []readyNode, answers map[int32]answer) metav1.Condition {
	set := func(status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return condition(network, bitcoinv1alpha1.ConditionConnected, status, reason, message)
	}
	if c, unknown := unobserved(set, nodes, answers); unknown {
		return c
	}
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
	reached := reachable(nodes[0].Ordinal, links)
	var apart []string
	for _, n := range nodes {
		if !reached[n.Ordinal] {
			apart = append(apart, n.NodeName)
		}
	}
	if len(apart) > 0 {
		return set(metav1.ConditionFalse, "Partitioned", fmt.Sprintf("%s no P2P path to %s yet",
			subject(apart, "has", "have"), nodes[0].NodeName))
	}
	if len(nodes) == 1 {
		return set(metav1.ConditionTrue, "Connected", "The only ready node has no other to connect to")
	}
	return set(metav1.ConditionTrue, "Connected", fmt.Sprintf("The %d ready nodes form one P2P network", len(nodes)))
}

// syncedCondition says whether every ready node reports the same best block.
func syncedCondition(network *bitcoinv1alpha1.BitcoinNetwork, nodes []readyNode, answers map[int32]answer) metav1.Condition {
	set := func(status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return condition(network, bitcoinv1alpha1.ConditionSynced, status, reason, message)
	}
	if c, unknown := unobserved(set, nodes, answers); unknown {
		return c
	}
	first := answers[nodes[0].Ordinal].chain
	var behind []string
	for _, n := range nodes[1:] {
		if c := answers[n.Ordinal].chain; c.BestBlockHash != first.BestBlockHash {
			behind = append(behind, fmt.Sprintf("%s at height %d", n.NodeName, c.Blocks))
		}
	}
	if len(behind) > 0 {
		return set(metav1.ConditionFalse, "BestBlocksDiffer", fmt.Sprintf("%s is at height %d (%s); %s",
			nodes[0].NodeName, first.Blocks, first.BestBlockHash, strings.Join(behind, ", ")))
	}
	if len(nodes) == 1 {
		return set(metav1.ConditionTrue, "Synced", fmt.Sprintf("The only ready node is at height %d (%s)", first.Blocks, first.BestBlockHash))
	}
	return set(metav1.ConditionTrue, "Synced", fmt.Sprintf("The %d ready nodes are at height %d (%s)",
		len(nodes), first.Blocks, first.BestBlockHash))
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
	return "Nodes " + strings.Join(names, ", ") + " " + plural
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

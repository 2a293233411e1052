package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
)

// The reconcilers export what they already observe as metrics (internal/metrics):
// the status reconciler its nodes and Available, the peer reconciler what each round
// heard. Each forgets its series with the rest of its memory of a network that is gone.

func metricsNetwork(key types.NamespacedName) metrics.Network {
	return metrics.Network{Namespace: key.Namespace, Name: key.Name}
}

// reportNodeMetrics exports the status reconciler's view of a network.
func reportNodeMetrics(network *bitcoinv1alpha1.BitcoinNetwork, s nodeStatus) {
	v := metrics.NodesView{Desired: network.Spec.Nodes, Ready: s.ReadyNodes, NodeReady: map[int32]bool{},
		Available: meta.IsStatusConditionTrue(s.Conditions, bitcoinv1alpha1.ConditionAvailable)}
	if m := network.Spec.Mining; m != nil && m.Interval != nil {
		v.MiningInterval = m.Interval.Duration
	}
	for _, n := range s.Nodes {
		v.NodeReady[n.Ordinal] = n.Ready
	}
	metrics.SetNodes(metricsNetwork(networkKey(network)), v)
}

// reportPeerMetrics exports what a round found: the conditions it led to, and each
// ready node's peers and chain. A node skipped this round stands by its last answer,
// as it does for the conditions; one never heard from counts as not answering.
func reportPeerMetrics(network *bitcoinv1alpha1.BitcoinNetwork, ended *peerRound, connected, synced, partitioned metav1.Condition) {
	v := metrics.PeersView{Connected: connected.Status == metav1.ConditionTrue, Synced: synced.Status == metav1.ConditionTrue,
		Partitioned: partitioned.Status == metav1.ConditionTrue,
		Nodes:       make(map[int32]metrics.NodeAnswer, len(ended.ready))}
	for _, n := range ended.ready {
		a := ended.answers[n.Ordinal]
		if a.err != nil {
			v.Nodes[n.Ordinal] = metrics.NodeAnswer{}
			continue
		}
		na := metrics.NodeAnswer{Answered: true, Height: a.chain.Blocks, BestBlockHash: a.chain.BestBlockHash}
		for _, p := range a.peers {
			if p.Inbound {
				na.Inbound++
			} else {
				na.Outbound++
			}
		}
		v.Nodes[n.Ordinal] = na
	}
	metrics.SetPeers(metricsNetwork(networkKey(network)), v)
}

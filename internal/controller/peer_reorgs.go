package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// reorg is a node's best chain dropping blocks it had: from one tip to another, with
// the number of blocks replaced (the old tip's branch from the fork point), 0 when the
// node no longer knows the old tip.
type reorg struct {
	from, to bitcoin.BlockchainInfo
	replaced int64
}

// findReorg tells whether a node whose tip moved from was to now dropped blocks: a
// tip that only grew still has was's tip at was's height (one getblockhash). Otherwise
// getchaintips says how long the old tip's branch is.
func findReorg(ctx context.Context, c *bitcoin.Client, was, now bitcoin.BlockchainInfo) (*reorg, error) {
	if now.Blocks >= was.Blocks {
		hash, err := c.GetBlockHash(ctx, was.Blocks)
		if err != nil {
			return nil, err
		}
		if hash == was.BestBlockHash {
			return nil, nil
		}
	}
	tips, err := c.GetChainTips(ctx)
	if err != nil {
		return nil, err
	}
	r := &reorg{from: was, to: now}
	for _, t := range tips {
		if t.Hash == was.BestBlockHash {
			r.replaced = t.BranchLen
		}
	}
	return r, nil
}

// reportReorgs announces each reorg a round found: a Reorganized event per node.
func (r *PeerReconciler) reportReorgs(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, ready []readyNode, answers map[int32]answer) {
	for _, n := range ready {
		a := answers[n.Ordinal]
		if a.reorg == nil || a.skipped || a.err != nil {
			continue
		}
		replaced := "its old tip is no longer known to it"
		if a.reorg.replaced > 0 {
			replaced = fmt.Sprintf("%d blocks replaced", a.reorg.replaced)
		}
		log.FromContext(ctx).Info("Node reorganized", "node", n.NodeName, "from", a.reorg.from.BestBlockHash, "to", a.reorg.to.BestBlockHash, "replaced", a.reorg.replaced)
		r.Recorder.Eventf(network, corev1.EventTypeNormal, "Reorganized", "Node %d switched from height %d (%s) to %d (%s): %s",
			n.Ordinal, a.reorg.from.Blocks, shortHash(a.reorg.from.BestBlockHash), a.reorg.to.Blocks, shortHash(a.reorg.to.BestBlockHash), replaced)
	}
}

// shortHash is a block hash as people quote it: its first characters.
func shortHash(hash string) string {
	if len(hash) <= 8 {
		return hash
	}
	return hash[:8] + ".."
}

// observation is what the status reconciler shows of a node that answered: counts,
// tip, user agent, and its reorgs so far (the status's count carried on by a
// restarted operator).
func (r *PeerReconciler) observation(network *bitcoinv1alpha1.BitcoinNetwork, ordinal int32, a answer) nodeObservation {
	o := nodeObservation{Peers: int32(len(a.peers)), Blocks: a.chain.Blocks, BestBlockHash: a.chain.BestBlockHash, Subversion: a.subversion}
	for _, p := range a.peers {
		if p.Inbound {
			o.Inbound++
		} else {
			o.Outbound++
		}
	}
	if last, ok := r.Observations.node(network, ordinal); ok {
		o.Reorgs = last.Reorgs
	} else {
		for _, n := range network.Status.Nodes {
			if n.Ordinal == ordinal {
				o.Reorgs = n.Reorgs
			}
		}
	}
	if a.reorg != nil && !a.skipped {
		o.Reorgs++
	}
	return o
}

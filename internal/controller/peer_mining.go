package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// maxBlocksPerCall bounds one generatetoaddress: a high minHeight is mined over
// several rounds, each call well within the client's timeout.
const maxBlocksPerCall = 200

// miningPlan is what spec.mining asks of a round, with the address resolved.
type miningPlan struct {
	address   string
	minHeight int64
	interval  time.Duration
	miners    []int32 // ordinals below spec.nodes, in the order listed
}

// String is the plan as a round's key shows it: a changed plan starts a round at once.
func (p *miningPlan) String() string {
	if p == nil {
		return "no mining"
	}
	return fmt.Sprintf("mine %s to %d every %s by %v", p.address, p.minHeight, p.interval, p.miners)
}

// miningState is what the rounds of a network remember of their mining. Rounds of a
// network never overlap, so only the round in flight touches it.
type miningState struct {
	lastBlockAt time.Time // of the last block mined by interval
	turn        int       // the next miner by interval, an index into the plan's miners
}

// mined is what a round mined.
type mined struct {
	ordinal int32
	blocks  int
	height  int64
}

// miningPlanOf resolves the network's spec.mining with its address: spec.mining.address
// or the generated key's. Without an address yet (the key's Secret is not created or
// cached yet), the plan has none and nothing is mined; the Secret's creation wakes the
// reconciler.
func (r *PeerReconciler) miningPlanOf(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) (*miningPlan, error) {
	spec := network.Spec.Mining
	if spec == nil {
		return nil, nil
	}
	plan := &miningPlan{address: spec.Address, minHeight: spec.MinHeight}
	if spec.Interval != nil {
		plan.interval = spec.Interval.Duration
	}
	for _, o := range spec.Nodes {
		if int32(o) < network.Spec.Nodes {
			plan.miners = append(plan.miners, int32(o))
		}
	}
	if plan.address == "" {
		addr, err := r.miningAddress(ctx, network)
		if err != nil {
			return nil, err
		}
		plan.address = addr
	}
	return plan, nil
}

// miningAddress returns the address of the key the operator generated for the
// network, read whole only when the cached metadata shows the Secret changed. Only
// the address is kept: the private key stays in the Secret.
func (r *PeerReconciler) miningAddress(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) (string, error) {
	name := miningKeySecretName(network)
	meta := secretMetadata.DeepCopy()
	if err := r.Get(ctx, keyOf(network, name), meta); err != nil || !metav1.IsControlledBy(meta, network) {
		return "", client.IgnoreNotFound(err)
	}
	if k, ok := r.miningKeys.load(network); ok && k.version == meta.ResourceVersion {
		return k.address, nil
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, keyOf(network, name), secret); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	addr := string(secret.Data[miningKeyAddress])
	r.miningKeys.store(network, miningAddressOf{version: secret.ResourceVersion, address: addr})
	return addr, nil
}

// miningAddressOf is the address of a generated key as last read.
type miningAddressOf struct{ version, address string }

// mine mines what the plan asks of the round, in each group of the split (the whole
// network without partitions), on a listed node of the group that answered this round
// and stands on the group's best chain: up to minHeight at once (a Mined event per
// batch), then one block per interval. Without partitions the listed nodes take turns
// for the interval's blocks; with them each group's first listed node mines, and a
// group with none does not. It reads the heights the round was told, so an operator
// restarted mid-way mines only what is missing.
func (r *PeerReconciler) mine(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, round *peerRound,
	links map[types.UID]*rpcLink, state *miningState) *mined {
	plan := round.mining
	if plan == nil || plan.address == "" || len(plan.miners) == 0 {
		return nil
	}
	byInterval := plan.interval > 0 && time.Since(state.lastBlockAt) >= plan.interval
	var last *mined
	intervalMined := false
	for _, group := range round.split.grouped(round.ready) {
		done, interval := r.mineGroup(ctx, network, round, group, links, state, byInterval)
		if done != nil {
			last = done
			intervalMined = intervalMined || interval
		}
	}
	if intervalMined {
		state.lastBlockAt, state.turn = time.Now(), state.turn+1
	}
	return last
}

// mineGroup mines what one group needs, and tells whether it was an interval's block.
func (r *PeerReconciler) mineGroup(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, round *peerRound,
	group []readyNode, links map[types.UID]*rpcLink, state *miningState, byInterval bool) (*mined, bool) {
	plan := round.mining
	best := bestHeight(group, round.answers)
	count, turn := 0, 0
	switch {
	case best < 0:
		return nil, false // no node of the group answered
	case best < plan.minHeight:
		count = int(min(plan.minHeight-best, maxBlocksPerCall))
		byInterval = false
	case byInterval:
		count = 1
		if !round.split.requested() {
			turn = state.turn
		}
	default:
		return nil, false
	}
	n, ok := minerOf(plan, group, round.answers, best, turn)
	if !ok {
		return nil, false // no listed node is ready, or none has the best chain yet
	}
	link := links[n.pod]
	var hashes []string
	var err error
	r.rounds.call(ctx, func() { hashes, err = link.client.GenerateToAddress(ctx, count, plan.address) })
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, false
	case err != nil:
		r.nodeFailed(ctx, network, n, link, fmt.Errorf("failed to mine: %w", err), round.creds)
		return nil, false
	}
	done := &mined{ordinal: n.Ordinal, blocks: len(hashes), height: best + int64(len(hashes))}
	if !byInterval {
		log.FromContext(ctx).Info("Mined", "node", n.NodeName, "blocks", done.blocks, "height", done.height)
		r.Recorder.Eventf(network, corev1.EventTypeNormal, "Mined", "Mined %d blocks on node %d; height %d", done.blocks, n.Ordinal, done.height)
	}
	return done, byInterval
}

// bestHeight is the highest chain the ready nodes reported this round.
func bestHeight(ready []readyNode, answers map[int32]answer) int64 {
	best := int64(-1)
	for _, n := range ready {
		if a := answers[n.Ordinal]; a.err == nil && !a.skipped {
			best = max(best, a.chain.Blocks)
		}
	}
	return best
}

// minerOf picks the mining node, starting at the plan's turn: a listed node that
// answered this round and has the best chain, so that the blocks extend it rather
// than fork it.
func minerOf(plan *miningPlan, ready []readyNode, answers map[int32]answer, best int64, turn int) (readyNode, bool) {
	for i := range plan.miners {
		o := plan.miners[(turn+i)%len(plan.miners)]
		at := slices.IndexFunc(ready, func(n readyNode) bool { return n.Ordinal == o })
		if at < 0 {
			continue
		}
		if a := answers[o]; a.err == nil && !a.skipped && a.chain.Blocks == best {
			return ready[at], true
		}
	}
	return readyNode{}, false
}

// miningStatus is status.mining after a round: the address and the highest chain the
// mining nodes reported, or what the round mined to. Nil when the network does not
// mine.
func miningStatus(plan *miningPlan, ended *peerRound) *bitcoinv1alpha1.BitcoinNetworkMiningStatus {
	if plan == nil {
		return nil
	}
	s := &bitcoinv1alpha1.BitcoinNetworkMiningStatus{Address: plan.address}
	height := int64(-1)
	for _, n := range ended.ready {
		if a := ended.answers[n.Ordinal]; a.err == nil && slices.Contains(plan.miners, n.Ordinal) {
			height = max(height, a.chain.Blocks)
		}
	}
	if ended.mined != nil {
		height = max(height, ended.mined.height)
	}
	if height >= 0 {
		s.Height = &height
	}
	return s
}

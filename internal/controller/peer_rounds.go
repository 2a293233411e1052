package controller

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
)

// A round asks a network's ready nodes for their peers and chain and wires them. It
// runs in a goroutine of its own, never on a reconcile worker: a worker only starts
// rounds and reports those that ended, so a network whose nodes answer slowly, or
// not at all, holds no worker that another network's reconcile needs.
//
// Every RPC call of every round, addnode and disconnectnode included, waits for one
// of callSlots, and each round has roundDeadline to finish. A node that fails or
// answers slowly backs off (peer_rpc.go), so a hostile network's nodes are asked
// less and less often, while the slots go on serving everyone else.
const (
	// roundDeadline bounds a round: three calls per node, up to 8 at a time, and the
	// addnode entries of a network being wired take a few seconds.
	roundDeadline = 20 * time.Second
	// callSlots bounds the nodes being called at once, across all networks. With
	// bitcoin.MaxResponseBytes, it also bounds the memory that answers can take.
	callSlots = 64
)

// peerRound is one round of one network: what it was started with and what it found.
type peerRound struct {
	ready []readyNode
	creds *credentials
	// mining is what spec.mining asks of the round; nil when the network does not mine.
	mining *miningPlan
	split  split
	// key says what the round was started for: a round whose key differs from the
	// network's now is out of date, and the next one starts at once.
	key string

	// Set by the round when it ends.
	answers map[int32]answer
	changed bool      // addnode entries were added or removed
	retryAt time.Time // the earliest retry of a failing or slow node; zero if none
	mined   *mined    // what the round mined, if anything
}

// roundKey is what a round depends on: the ready nodes' addresses, the credentials
// and the mining plan.
func roundKey(ready []readyNode, creds *credentials, mining *miningPlan, s split) string {
	var b strings.Builder
	b.WriteString(creds.secret + "/" + creds.version + " " + mining.String() + " split " + s.String())
	for _, n := range ready {
		b.WriteString(" " + string(n.pod) + "@" + n.rpc)
	}
	return b.String()
}

// roundState is what the rounds keep of one network. A round in flight owns links;
// rounds of one network never overlap.
type roundState struct {
	mu       sync.Mutex
	links    map[types.UID]*rpcLink
	running  *peerRound
	cancel   context.CancelFunc
	finished *peerRound // ended, not yet reported
	lastKey  string     // of the last round started
	nextAt   time.Time  // when the next round is due, unless the key changes
	gone     bool       // the network is gone: its last round announces nothing
	mining   miningState
	// bansLeft: a split's bans may remain on some node; rounds lift them after healing.
	bansLeft, bansLeftKnown bool
	// heldRewiring is what rounds changed while the network came up, for one event
	// of each kind once every node is ready (announceRewiring).
	heldRewiring heldRewiring
	// miningWrittenAt is when a changed status.mining was last handed to the status
	// reconciler: the height it shows is refreshed once a period, not with every
	// block mined by interval.
	miningWrittenAt time.Time
}

// peerRounds runs every network's rounds.
type peerRounds struct {
	states networkMemory[*roundState]
	// ended wakes the peer reconciler when a round has ended.
	ended chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]
	calls chan struct{}
	// ctx is the manager's once it runs the rounds (Start): rounds end with it.
	ctx atomic.Pointer[context.Context]
	// mu orders the rounds' start before the wait for them at shutdown.
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

func newPeerRounds() *peerRounds {
	p := &peerRounds{
		ended: make(chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork], 1024),
		calls: make(chan struct{}, callSlots),
	}
	background := context.Background()
	p.ctx.Store(&background)
	return p
}

// Start keeps the manager's context for the rounds, and waits for them to end when
// the manager stops (a manager.Runnable).
func (p *peerRounds) Start(ctx context.Context) error {
	p.ctx.Store(&ctx)
	<-ctx.Done()
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// of returns the state of a network, dropping what an earlier network of the same
// name left.
func (p *peerRounds) of(network *bitcoinv1alpha1.BitcoinNetwork) *roundState {
	if s, ok := p.states.load(network); ok {
		return s
	}
	p.forget(networkKey(network))
	s := &roundState{links: map[types.UID]*rpcLink{}}
	p.states.store(network, s)
	return s
}

// forget drops a network's state and cancels its round, if one runs.
func (p *peerRounds) forget(key types.NamespacedName) {
	s, ok := p.states.forget(key)
	if !ok {
		return
	}
	s.mu.Lock()
	s.gone = true
	running, cancel := s.running != nil, s.cancel
	s.mu.Unlock()
	if running {
		cancel()
	}
}

// takeFinished returns the round that ended since the last call, if any.
func (s *roundState) takeFinished() *peerRound {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.finished
	s.finished = nil
	return r
}

// due tells whether a round for key should start now, and if not, how long until
// one is due (a round in flight ends by its deadline and wakes the reconciler).
func (s *roundState) due(key string, now time.Time) (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.running != nil:
		return false, roundDeadline
	case key == s.lastKey && now.Before(s.nextAt):
		return false, s.nextAt.Sub(now)
	}
	return true, 0
}

// scheduleNext sets when the next round is due.
func (s *roundState) scheduleNext(at time.Time) {
	s.mu.Lock()
	s.nextAt = at
	s.mu.Unlock()
}

// start runs a round in the background; work is the round's RPC, given the round's
// context, a copy of the network and the network's links. The network is woken on
// ended when it is over. Once the manager stops, no round starts.
func (p *peerRounds) start(network *bitcoinv1alpha1.BitcoinNetwork, s *roundState, round *peerRound,
	work func(context.Context, *bitcoinv1alpha1.BitcoinNetwork, *roundState, *peerRound)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	base := *p.ctx.Load()
	ctx, cancel := context.WithTimeout(base, roundDeadline)
	s.mu.Lock()
	s.running, s.cancel, s.lastKey = round, cancel, round.key
	s.mu.Unlock()
	network = network.DeepCopy()
	p.wg.Go(func() {
		defer cancel()
		begun := time.Now()
		work(ctx, network, s, round)
		metrics.RoundEnded(begun, ctx.Err())
		s.mu.Lock()
		s.running, s.finished = nil, round
		gone := s.gone
		s.mu.Unlock()
		if gone {
			return
		}
		select {
		case p.ended <- event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]{Object: network}:
		case <-base.Done():
		}
	})
}

// call runs f once one of the call slots is free, unless ctx ends first.
func (p *peerRounds) call(ctx context.Context, f func()) {
	select {
	case p.calls <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-p.calls }()
	f()
}

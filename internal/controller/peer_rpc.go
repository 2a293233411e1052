package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// readyNode is a node of a round: a ready pod with an IP, and its RPC and P2P
// addresses.
type readyNode struct {
	bitcoinv1alpha1.BitcoinNetworkNode
	pod      types.UID
	restarts int32  // of the pod's containers: a restarted bitcoind is a new incarnation
	rpc, p2p string // ip:port
}

// incarnation names one run of a node's bitcoind: its pod and the pod's restarts.
// What a node says of itself (getnetworkinfo's subversion) is asked once per
// incarnation.
func (n readyNode) incarnation() string {
	return fmt.Sprintf("%s/%d", n.pod, n.restarts)
}

// answer is what a node said when asked for its peers and chain, or why it did not.
type answer struct {
	added []string // getaddednodeinfo
	peers []bitcoin.Peer
	chain bitcoin.BlockchainInfo
	// subversion is getnetworkinfo's, asked once per incarnation and carried over.
	subversion, incarnation string
	// reorg is set when the node's best chain dropped blocks it had since its last
	// answer; never on a skipped answer.
	reorg *reorg
	err   error
	// slow is how long the slowest call took, when that was over slowCall.
	slow time.Duration
	// skipped: the node was not asked (its retry is not due, or the round ended
	// first); the answer is its last, or err its last error.
	skipped bool
}

// errNotAsked stands for the answer of a node that the round ended before asking.
var errNotAsked = errors.New("not asked yet: the round ran out of time")

// callsAtOnce bounds the nodes of one network called at the same time.
const callsAtOnce = 8

// atOnce runs f for each node, callsAtOnce of them at a time, and returns when all
// are done: the one way a round calls a network's nodes (asking, wiring, rechecking).
func atOnce(nodes []readyNode, f func(i int, n readyNode)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, callsAtOnce)
	for i, n := range nodes {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			f(i, n)
		})
	}
	wg.Wait()
}

// slowCall is how long an answer may take before it counts against its node: half
// the client's timeout. A slow node's answer is used, and the node backs off as a
// failing one does.
const slowCall = 2500 * time.Millisecond

// ask calls each ready node whose retry is due, a few at a time, for its added nodes,
// peers and chain, and schedules the retries of those that failed or answered
// slowly. A node not due keeps its last answer, or its last error. A call the round's
// end or the operator's shutdown cut short is not held against the node.
func (r *PeerReconciler) ask(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, ready []readyNode,
	creds *credentials, links map[types.UID]*rpcLink) map[int32]answer {
	keep := map[types.UID]bool{}
	answers := make(map[int32]answer, len(ready))
	var due []readyNode
	now := time.Now()
	for _, n := range ready {
		keep[n.pod] = true
		if link := linkTo(links, n.pod, n.rpc, creds); link.due(now) {
			due = append(due, n)
		} else {
			answers[n.Ordinal] = link.skipped()
		}
	}
	asked := make([]answer, len(due))
	atOnce(due, func(i int, n readyNode) {
		link := links[n.pod]
		asked[i] = link.skipped()
		r.rounds.call(ctx, func() { asked[i] = askNode(ctx, link.client, n.incarnation(), link.known()) })
	})
	for i, n := range due {
		answers[n.Ordinal] = asked[i]
	}
	prune(links, keep)
	for _, n := range ready {
		r.settle(ctx, network, n, links[n.pod], answers, creds)
	}
	return answers
}

// settle books a node's answer: its retry schedule, and an event when its trouble is
// news.
func (r *PeerReconciler) settle(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, n readyNode,
	link *rpcLink, answers map[int32]answer, creds *credentials) {
	a := answers[n.Ordinal]
	switch {
	case a.skipped:
	case a.err != nil && ctx.Err() != nil:
		answers[n.Ordinal] = link.skipped() // cut short: not the node's doing
	case a.err != nil:
		r.nodeFailed(ctx, network, n, link, a.err, creds)
	case a.slow > 0:
		if link.answeredSlowly(a, time.Now()) {
			log.FromContext(ctx).Info("Node answers RPC slowly", "node", n.NodeName, "took", a.slow, "retryAt", link.retryAt)
			r.Recorder.Eventf(network, corev1.EventTypeWarning, "RPCSlow", "Node %s at %s took %s to answer (more than %s); asking it less often until it answers in time",
				n.NodeName, n.rpc, a.slow.Round(time.Millisecond), slowCall)
		}
	default:
		if link.answered(a) {
			log.FromContext(ctx).Info("Node answers RPC again", "node", n.NodeName)
		}
	}
}

// askNode asks a node for its added nodes, peers and chain: three calls. It asks
// getnetworkinfo only for a new incarnation, and looks for a reorg only when the tip
// changed since the node's last answer (known), so a settled network costs three
// calls per node and round.
func askNode(ctx context.Context, c *bitcoin.Client, incarnation string, known answer) answer {
	a := answer{}
	timed := func(call func() error) error {
		start := time.Now()
		err := call()
		if took := time.Since(start); took > slowCall {
			a.slow = max(a.slow, took)
		}
		return err
	}
	var added []bitcoin.AddedNode
	if err := timed(func() (err error) { added, err = c.GetAddedNodeInfo(ctx); return err }); err != nil {
		return answer{err: err}
	}
	for _, entry := range added {
		a.added = append(a.added, entry.AddedNode)
	}
	if err := timed(func() (err error) { a.peers, err = c.GetPeerInfo(ctx); return err }); err != nil {
		return answer{err: err}
	}
	if err := timed(func() (err error) { a.chain, err = c.GetBlockchainInfo(ctx); return err }); err != nil {
		return answer{err: err}
	}
	a.chain.BestBlockHash = cut(a.chain.BestBlockHash, blockHashLength)
	a.incarnation, a.subversion = incarnation, known.subversion
	if known.incarnation != incarnation {
		var info bitcoin.NetworkInfo
		if err := timed(func() (err error) { info, err = c.GetNetworkInfo(ctx); return err }); err != nil {
			return answer{err: err}
		}
		a.subversion = cut(info.Subversion, maxSubversion)
	}
	if was := known.chain; was.BestBlockHash != "" && was.BestBlockHash != a.chain.BestBlockHash {
		if err := timed(func() (err error) { a.reorg, err = findReorg(ctx, c, was, a.chain); return err }); err != nil {
			return answer{err: err}
		}
	}
	return a
}

// What a node says of itself goes into its status.nodes entry, 1,000 of which share
// one object of at most 1.5 MiB: a node (a tenant's image) that says more than Bitcoin
// Core ever does is cut to what Core would say. Core refuses to start with a user
// agent over MAX_SUBVERSION_LENGTH (src/net.h), and a block hash is 32 bytes in hex.
const (
	maxSubversion   = 256
	blockHashLength = 64
)

// cut returns s, cut to at most n bytes.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// nodeFailed schedules the node's retry and announces a failure when it is news (an
// RPCFailed event): the first of its kind, not every retry.
func (r *PeerReconciler) nodeFailed(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, n readyNode, link *rpcLink, err error, creds *credentials) {
	if !link.failed(err, time.Now()) {
		return
	}
	log.FromContext(ctx).Info("Node failed an RPC call", "node", n.NodeName, "error", err.Error(), "retryAt", link.retryAt)
	r.Recorder.Eventf(network, corev1.EventTypeWarning, "RPCFailed", "Node %s at %s: %s; retrying with backoff",
		n.NodeName, n.rpc, rpcFailure(err, creds))
}

// rpcFailure says what an RPC failure means for the user.
func rpcFailure(err error, creds *credentials) string {
	if errors.Is(err, bitcoin.ErrUnauthorized) {
		return fmt.Sprintf("refused the credentials in Secret %q (HTTP 401)", creds.secret)
	}
	return err.Error()
}

// Retries of a node that failed an RPC call back off from retryBase to retryMax,
// per node: one unreachable node neither slows its network's other nodes nor other
// networks.
const (
	retryBase = time.Second
	retryMax  = 2 * time.Minute
)

// rpcLink is the peer reconciler's RPC client of one pod, and its retry schedule.
type rpcLink struct {
	client *bitcoin.Client
	// identity is what the client was made for: address and credentials' version.
	identity string
	// failures counts the rounds in a row in which the node failed or was slow.
	failures int
	retryAt  time.Time
	lastErr  error  // the last failure; nil once the node answers, even slowly
	trouble  string // the kind of the last trouble announced; "" while all is well
	last     answer // the last answer, for the rounds that skip the node
	heard    bool   // the node has answered at least once
}

// linkTo returns the link to a pod's RPC server at addr, made anew when the address or
// the credentials changed.
func linkTo(links map[types.UID]*rpcLink, pod types.UID, addr string, creds *credentials) *rpcLink {
	identity := addr + "/" + creds.secret + "/" + creds.version
	link := links[pod]
	if link == nil || link.identity != identity {
		link = &rpcLink{client: bitcoin.New(addr, creds.user, creds.password), identity: identity}
		links[pod] = link
	}
	return link
}

// prune drops the links whose pods are not in keep.
func prune(links map[types.UID]*rpcLink, keep map[types.UID]bool) {
	for uid := range links {
		if !keep[uid] {
			delete(links, uid)
		}
	}
}

// due tells whether the node may be called now.
func (l *rpcLink) due(now time.Time) bool { return !now.Before(l.retryAt) }

// skipped is the answer of a node not asked this round: its last.
func (l *rpcLink) skipped() answer {
	switch {
	case l.lastErr != nil:
		return answer{err: l.lastErr, skipped: true}
	case !l.heard:
		return answer{err: errNotAsked, skipped: true}
	}
	a := l.last
	a.skipped, a.reorg = true, nil
	return a
}

// known is what the node last answered, for the next round to compare with; empty
// until it answered.
func (l *rpcLink) known() answer {
	if !l.heard {
		return answer{}
	}
	return l.last
}

// backOff schedules the next call of a failing or slow node.
func (l *rpcLink) backOff(now time.Time) {
	l.failures++
	delay := min(retryBase<<min(l.failures-1, 16), retryMax)
	// Jitter, so that the nodes of a network that failed together retry apart.
	delay += time.Duration(rand.Int64N(int64(delay) / 5))
	l.retryAt = now.Add(delay)
}

// failed schedules the next attempt, and tells whether this failure is news: the
// first of its kind in a row.
func (l *rpcLink) failed(err error, now time.Time) (news bool) {
	l.backOff(now)
	l.lastErr = err
	return l.troubled(failureKind(err))
}

// answeredSlowly keeps the answer, schedules the next call as for a failure, and
// tells whether the slowness is news.
func (l *rpcLink) answeredSlowly(a answer, now time.Time) (news bool) {
	l.backOff(now)
	l.lastErr, l.last, l.heard = nil, a, true
	return l.troubled("slow")
}

// answered keeps the answer, clears the failures, and tells whether the node had
// been in trouble.
func (l *rpcLink) answered(a answer) (recovered bool) {
	recovered = l.failures > 0
	l.failures, l.retryAt, l.lastErr, l.trouble, l.last, l.heard = 0, time.Time{}, nil, "", a, true
	return recovered
}

func (l *rpcLink) troubled(kind string) (news bool) {
	news = kind != l.trouble
	l.trouble = kind
	return news
}

// failureKind is an error's text with the port numbers masked: a connection failure
// names the local port it used, which differs at every retry.
func failureKind(err error) string {
	return portNumber.ReplaceAllString(err.Error(), ":*")
}

var portNumber = regexp.MustCompile(`:\d+\b`)

// earliestRetry is when the first of the links' nodes that are backing off is due.
func earliestRetry(links map[types.UID]*rpcLink) time.Time {
	var at time.Time
	for _, link := range links {
		if !link.retryAt.IsZero() && (at.IsZero() || link.retryAt.Before(at)) {
			at = link.retryAt
		}
	}
	return at
}

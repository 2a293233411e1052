package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	rpc, p2p string // ip:port
}

// answer is what a node said when asked for its peers and chain, or why it did not.
type answer struct {
	added []string // getaddednodeinfo
	peers []bitcoin.Peer
	chain bitcoin.BlockchainInfo
	err   error
	// skipped: the node was not asked, its retry not being due; err is its last.
	skipped bool
}

// callsAtOnce bounds the nodes of one network asked at the same time.
const callsAtOnce = 8

// ask calls each ready node whose retry is due, a few at a time, for its added nodes,
// peers and chain, and schedules the retries of those that failed. A node not due
// keeps its last error.
func (r *PeerReconciler) ask(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, ready []readyNode, creds *credentials) map[int32]answer {
	links := r.links.of(network)
	keep := map[types.UID]bool{}
	answers := make(map[int32]answer, len(ready))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, callsAtOnce)
	now := time.Now()
	for _, n := range ready {
		keep[n.pod] = true
		link := linkTo(links, n.pod, n.rpc, creds)
		if !link.due(now) {
			answers[n.Ordinal] = answer{err: link.lastErr, skipped: true}
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			a := askNode(ctx, link.client)
			<-slots
			mu.Lock()
			answers[n.Ordinal] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	prune(links, keep)
	for _, n := range ready {
		switch a, link := answers[n.Ordinal], links[n.pod]; {
		case a.err == nil:
			if link.succeeded() {
				log.FromContext(ctx).Info("Node answers RPC again", "node", n.NodeName)
			}
		case !a.skipped:
			r.nodeFailed(ctx, network, n, link, a.err, creds)
		}
	}
	return answers
}

func askNode(ctx context.Context, c *bitcoin.Client) answer {
	added, err := c.GetAddedNodeInfo(ctx)
	if err != nil {
		return answer{err: err}
	}
	a := answer{}
	for _, entry := range added {
		a.added = append(a.added, entry.AddedNode)
	}
	if a.peers, err = c.GetPeerInfo(ctx); err != nil {
		return answer{err: err}
	}
	if a.chain, err = c.GetBlockchainInfo(ctx); err != nil {
		return answer{err: err}
	}
	return a
}

// nodeFailed schedules the node's retry and announces a failure the first time it
// happens (an RPCFailed event), not at every retry.
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

// rpcLinks keeps an rpcLink for each pod of each network. Reconciles of one network
// never run at once, so a network's map is used without a lock.
type rpcLinks struct {
	networks networkMemory[map[types.UID]*rpcLink]
}

// rpcLink is the peer reconciler's RPC client of one pod, and its retry schedule.
type rpcLink struct {
	client *bitcoin.Client
	// identity is what the client was made for: address and credentials' version.
	identity string
	failures int
	retryAt  time.Time
	lastErr  error
}

// of returns the links of a network, creating the network's entry. The links of an
// earlier network of the same name are closed.
func (l *rpcLinks) of(network *bitcoinv1alpha1.BitcoinNetwork) map[types.UID]*rpcLink {
	if links, ok := l.networks.load(network); ok {
		return links
	}
	l.forget(networkKey(network))
	links := map[types.UID]*rpcLink{}
	l.networks.store(network, links)
	return links
}

// forget closes and drops every link of a network.
func (l *rpcLinks) forget(key types.NamespacedName) {
	links, _ := l.networks.forget(key)
	for _, link := range links {
		link.client.Close()
	}
}

// linkTo returns the link to a pod's RPC server at addr, made anew when the address or
// the credentials changed.
func linkTo(links map[types.UID]*rpcLink, pod types.UID, addr string, creds *credentials) *rpcLink {
	identity := addr + "/" + creds.secret + "/" + creds.version
	link := links[pod]
	if link == nil || link.identity != identity {
		if link != nil {
			link.client.Close()
		}
		link = &rpcLink{client: bitcoin.New(addr, creds.user, creds.password), identity: identity}
		links[pod] = link
	}
	return link
}

// prune closes and drops the links whose pods are not in keep.
func prune(links map[types.UID]*rpcLink, keep map[types.UID]bool) {
	for uid, link := range links {
		if !keep[uid] {
			link.client.Close()
			delete(links, uid)
		}
	}
}

// due tells whether the node may be called now.
func (l *rpcLink) due(now time.Time) bool { return !now.Before(l.retryAt) }

// failed schedules the next attempt, and tells whether this failure is news: the
// first, or different from the last.
func (l *rpcLink) failed(err error, now time.Time) (news bool) {
	l.failures++
	delay := min(retryBase<<min(l.failures-1, 16), retryMax)
	// Jitter, so that the nodes of a network that failed together retry apart.
	delay += time.Duration(rand.Int64N(int64(delay) / 5))
	l.retryAt = now.Add(delay)
	news = l.lastErr == nil || err.Error() != l.lastErr.Error()
	l.lastErr = err
	return news
}

// succeeded clears the failures, and tells whether the node had been failing.
func (l *rpcLink) succeeded() (recovered bool) {
	recovered = l.failures > 0
	l.failures, l.retryAt, l.lastErr = 0, time.Time{}, nil
	return recovered
}

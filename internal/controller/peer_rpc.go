package controller

import (
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// Retries of a node that failed an RPC call back off from retryBase to retryMax,
// per node: one unreachable node neither slows its network's other nodes nor other
// networks.
const (
	retryBase = time.Second
	retryMax  = 2 * time.Minute
)

// rpcNodes keeps an RPC client and a retry schedule for each node (pod) of each network.
// Reconciles of one network never run at once, so only the map of networks is locked.
type rpcNodes struct {
	mu       sync.Mutex
	networks map[types.NamespacedName]map[types.UID]*rpcNode
}

// rpcNode is the peer reconciler's link to one node's RPC server.
type rpcNode struct {
	client *bitcoin.Client
	// identity is what the client was made for: address and credentials' version.
	identity string
	failures int
	retryAt  time.Time
	lastErr  error
}

// nodesOf returns the nodes of a network, creating the network's entry.
func (s *rpcNodes) nodesOf(key types.NamespacedName) map[types.UID]*rpcNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.networks == nil {
		s.networks = map[types.NamespacedName]map[types.UID]*rpcNode{}
	}
	if s.networks[key] == nil {
		s.networks[key] = map[types.UID]*rpcNode{}
	}
	return s.networks[key]
}

// forget closes and drops every node of a network.
func (s *rpcNodes) forget(key types.NamespacedName) {
	s.mu.Lock()
	nodes := s.networks[key]
	delete(s.networks, key)
	s.mu.Unlock()
	for _, n := range nodes {
		n.client.Close()
	}
}

// linkTo returns the link to a pod's RPC server at addr, made anew when the address or
// the credentials changed.
func linkTo(nodes map[types.UID]*rpcNode, pod types.UID, addr string, creds *credentials) *rpcNode {
	identity := addr + "/" + creds.secret + "/" + creds.version
	n := nodes[pod]
	if n == nil || n.identity != identity {
		if n != nil {
			n.client.Close()
		}
		n = &rpcNode{client: bitcoin.New(addr, creds.user, creds.password), identity: identity}
		nodes[pod] = n
	}
	return n
}

// prune closes and drops the nodes whose pods are not in keep.
func prune(nodes map[types.UID]*rpcNode, keep map[types.UID]bool) {
	for uid, n := range nodes {
		if !keep[uid] {
			n.client.Close()
			delete(nodes, uid)
		}
	}
}

// due tells whether the node may be called now.
func (n *rpcNode) due(now time.Time) bool { return !now.Before(n.retryAt) }

// failed schedules the next attempt, and tells whether this failure is news: the
// first, or different from the last.
func (n *rpcNode) failed(err error, now time.Time) (news bool) {
	n.failures++
	delay := min(retryBase<<min(n.failures-1, 16), retryMax)
	// Jitter, so that the nodes of a network that failed together retry apart.
	delay += time.Duration(rand.Int64N(int64(delay) / 5))
	n.retryAt = now.Add(delay)
	news = n.lastErr == nil || err.Error() != n.lastErr.Error()
	n.lastErr = err
	return news
}

// succeeded clears the failures, and tells whether the node had been failing.
func (n *rpcNode) succeeded() (recovered bool) {
	recovered = n.failures > 0
	n.failures, n.retryAt, n.lastErr = 0, time.Time{}, nil
	return recovered
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
)

// wire makes each node's added-node list what the topology wants for its group (the
// whole network without partitions), and tells whether
// it changed any. New entries go in everywhere first; stale ones come out only once
// every ready node answered and took its new entries, so that each step of a scaling
// keeps the graph connected. held carries changes not yet announced from round to
// round (announceRewiring). It also returns the nodes that got new entries.
func (r *PeerReconciler) wire(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, ready []readyNode,
	answers map[int32]answer, creds *credentials, links map[types.UID]*rpcLink, s split, held *heldRewiring) (bool, []int32) {
	names := make(map[string]string, len(ready)) // P2P address to pod name
	for _, n := range ready {
		names[n.p2p] = n.NodeName
	}
	want := wantedPeers(ready, s, network.Spec.Nodes)
	added, removed := rewiring{names: names}, rewiring{names: names}
	complete := true
	results := eachNode(ready, func(n readyNode) ([]string, error) {
		if a := answers[n.Ordinal]; a.err != nil || a.skipped {
			return nil, errNotKnown
		}
		var done []string
		var err error
		r.rounds.call(ctx, func() {
			done, err = addPeers(ctx, links[n.pod].client, difference(want[n.p2p], answers[n.Ordinal].added))
		})
		return done, err
	})
	for i, n := range ready {
		res := results[i]
		added.record(n, res.done)
		switch {
		case errors.Is(res.err, errNotKnown):
			complete = false // what it has is not known this round
		case res.err != nil || ctx.Err() != nil:
			complete = false
			r.wiringFailed(ctx, network, n, links[n.pod], res.err, creds)
		}
	}
	if complete {
		results = eachNode(ready, func(n readyNode) ([]string, error) {
			var done []string
			var err error
			r.rounds.call(ctx, func() {
				done, err = removePeers(ctx, links[n.pod].client, difference(answers[n.Ordinal].added, want[n.p2p]))
			})
			return done, err
		})
		for i, n := range ready {
			removed.record(n, results[i].done)
			r.wiringFailed(ctx, network, n, links[n.pod], results[i].err, creds)
		}
	}
	logRewiring(ctx, "added", added)
	logRewiring(ctx, "removed", removed)
	r.announceRewiring(network, len(ready), added, removed, held)
	metrics.AddnodeChanges(added.entries, removed.entries)
	return len(added.changes) > 0 || len(removed.changes) > 0, added.nodes
}

// errNotKnown stands for a node whose added nodes the round does not know: it failed
// to answer or was not asked, and is not wired this round.
var errNotKnown = errors.New("the node's added nodes are not known this round")

// wired is what wiring one node did: the entries added or removed, and why it stopped.
type wired struct {
	done []string
	err  error
}

// eachNode wires the nodes callsAtOnce at a time, as ask asks them, and returns what
// each took, in the nodes' order. One node after another, the 14,000 addnode calls
// that wire a network of 1,000 nodes would take most of a round's deadline at a
// millisecond each.
func eachNode(nodes []readyNode, wire func(readyNode) ([]string, error)) []wired {
	results := make([]wired, len(nodes))
	atOnce(nodes, func(i int, n readyNode) { results[i].done, results[i].err = wire(n) })
	return results
}

// recheckPeers asks the nodes that got new entries for their peers again, after the
// round's wiring: addnode onetry dials at once, so the round's conditions see the new
// connections. Otherwise every node joining a network would turn Connected False
// until the next round and True again, two status writes for nothing. A node that
// does not answer keeps its first answer; the next round asks it anyway. A round that
// wired many nodes at once (a large network starting in Parallel) skips it: the next
// round, a second later, sees them, and the round keeps its time for its deadline.
func (r *PeerReconciler) recheckPeers(ctx context.Context, ready []readyNode, answers map[int32]answer,
	links map[types.UID]*rpcLink, dialed []int32) {
	if len(dialed) > maxRechecked {
		return
	}
	var again []readyNode
	for _, n := range ready {
		if slices.Contains(dialed, n.Ordinal) && links[n.pod] != nil {
			again = append(again, n)
		}
	}
	peers := make([][]bitcoin.Peer, len(again))
	answered := make([]bool, len(again))
	atOnce(again, func(i int, n readyNode) {
		// A call the round's end cut short never runs: the node keeps its answer.
		r.rounds.call(ctx, func() {
			var err error
			peers[i], err = links[n.pod].client.GetPeerInfo(ctx)
			answered[i] = err == nil
		})
	})
	for i, n := range again {
		if answered[i] {
			a := answers[n.Ordinal]
			a.peers = peers[i]
			answers[n.Ordinal] = a
		}
	}
}

// wiringFailed books a failed addnode or disconnectnode against the node, unless the
// round's end or the operator's shutdown cut it short.
func (r *PeerReconciler) wiringFailed(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, n readyNode, link *rpcLink, err error, creds *credentials) {
	if err != nil && ctx.Err() == nil {
		r.nodeFailed(ctx, network, n, link, err, creds)
	}
}

// rewiring collects the entries a round added or removed, to announce them in one
// event: the API server's spam filter allows an object about 25 events in a burst, so
// one per node and entry would silence a large network's later events.
type rewiring struct {
	names   map[string]string // P2P address to pod name
	changes []string          // "<node>: <peer>, <peer>"
	entries int
	nodes   []int32 // the nodes whose list changed, by ordinal
}

func (w *rewiring) record(n readyNode, peers []string) {
	if len(peers) == 0 {
		return
	}
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p
		if name, ok := w.names[p]; ok {
			names[i] = name + " (" + p + ")"
		}
	}
	w.changes = append(w.changes, n.NodeName+": "+strings.Join(names, ", "))
	w.entries += len(peers)
	w.nodes = append(w.nodes, n.Ordinal)
}

// merge adds another round's changes, keeping no more than an event can show.
func (w *rewiring) merge(o rewiring) {
	w.entries += o.entries
	w.changes = append(w.changes, o.changes[:min(len(o.changes), maxHeldChanges-len(w.changes))]...)
}

// maxRechecked is the most nodes a round asks again after wiring (recheckPeers): the
// nodes joining one by one, not a whole network wired at once.
const maxRechecked = 2 * callsAtOnce

// maxHeldChanges bounds the changes held for one event: its message holds 1 KiB.
const maxHeldChanges = 64

func logRewiring(ctx context.Context, verb string, w rewiring) {
	if w.entries == 0 {
		return
	}
	logged := w.changes
	if len(logged) > maxLoggedChanges {
		logged = append(logged[:maxLoggedChanges:maxLoggedChanges], fmt.Sprintf("and %d more nodes", len(w.changes)-maxLoggedChanges))
	}
	log.FromContext(ctx).Info("Rewired nodes", "action", verb, "entries", w.entries, "nodes", len(w.changes), "changes", logged)
}

// maxLoggedChanges is how many nodes' changes a log line lists: wiring a network of
// 1,000 nodes would otherwise log a line of 200 KB.
const maxLoggedChanges = 20

// heldRewiring is what rounds changed while the network came up, not yet announced.
type heldRewiring struct{ added, removed rewiring }

// announceRewiring says a round's changes in a PeerAdded and a PeerRemoved event. While
// the network comes up (fewer ready nodes than spec.nodes) they are held, and said
// together once every node is ready: a network coming up one node after another is
// one event of each, not one per node. Events are writes too, and the API server's
// spam filter allows an object about 25 in a burst: a large network's growth would
// spend them all.
func (r *PeerReconciler) announceRewiring(network *bitcoinv1alpha1.BitcoinNetwork, ready int, added, removed rewiring, held *heldRewiring) {
	held.added.merge(added)
	held.removed.merge(removed)
	if int32(ready) < network.Spec.Nodes {
		return
	}
	r.announce(network, "PeerAdded", "added", held.added)
	r.announce(network, "PeerRemoved", "removed", held.removed)
	*held = heldRewiring{}
}

// announce sends a round's rewiring as one event, its message cut to what an event
// holds.
func (r *PeerReconciler) announce(network *bitcoinv1alpha1.BitcoinNetwork, reason, verb string, w rewiring) {
	if w.entries == 0 {
		return
	}
	message := fmt.Sprintf("%s %d addnode %s; %s", strings.ToUpper(verb[:1])+verb[1:], w.entries,
		map[bool]string{true: "entry", false: "entries"}[w.entries == 1], strings.Join(w.changes, "; "))
	if len(message) > maxEventMessage {
		message = message[:maxEventMessage-3] + "..."
	}
	r.Recorder.Event(network, corev1.EventTypeNormal, reason, message)
}

// maxEventMessage is how long an event's message may be (validation of core/v1
// events allows 1 KiB in note-like fields of events.k8s.io; keep within it).
const maxEventMessage = 1024

// addPeers adds the entries, and tries each once at once: Bitcoin Core's added-node
// thread may otherwise wait up to a minute before dialing a new entry.
func addPeers(ctx context.Context, c *bitcoin.Client, peers []string) ([]string, error) {
	for i, p := range peers {
		if err := c.AddNode(ctx, p, bitcoin.AddNodeAdd); err != nil {
			return peers[:i], err
		}
		if err := c.AddNode(ctx, p, bitcoin.AddNodeOneTry); err != nil {
			return peers[:i+1], err
		}
	}
	return peers, nil
}

// removePeers removes the entries and closes their connections, which removing alone
// leaves open, holding one of the node's 8 added-connection slots.
func removePeers(ctx context.Context, c *bitcoin.Client, peers []string) ([]string, error) {
	for i, p := range peers {
		if err := c.AddNode(ctx, p, bitcoin.AddNodeRemove); err != nil {
			return peers[:i], err
		}
		if err := c.DisconnectNode(ctx, p); err != nil {
			return peers[:i+1], err
		}
	}
	return peers, nil
}

// difference returns the elements of a not in b, sorted.
func difference(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

package controller

import (
	"context"
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
// keeps the graph connected.
func (r *PeerReconciler) wire(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, ready []readyNode,
	answers map[int32]answer, creds *credentials, links map[types.UID]*rpcLink, s split) bool {
	names := make(map[string]string, len(ready)) // P2P address to pod name
	for _, n := range ready {
		names[n.p2p] = n.NodeName
	}
	want := wantedPeers(ready, s)
	added, removed := rewiring{names: names}, rewiring{names: names}
	complete := true
	for _, n := range ready {
		if a := answers[n.Ordinal]; a.err != nil || a.skipped {
			complete = false // what it has is not known this round
			continue
		}
		var done []string
		var err error
		r.rounds.call(ctx, func() {
			done, err = addPeers(ctx, links[n.pod].client, difference(want[n.p2p], answers[n.Ordinal].added))
		})
		added.record(n, done)
		if err != nil || ctx.Err() != nil {
			complete = false
			r.wiringFailed(ctx, network, n, links[n.pod], err, creds)
		}
	}
	if complete {
		for _, n := range ready {
			var done []string
			var err error
			r.rounds.call(ctx, func() {
				done, err = removePeers(ctx, links[n.pod].client, difference(answers[n.Ordinal].added, want[n.p2p]))
			})
			removed.record(n, done)
			r.wiringFailed(ctx, network, n, links[n.pod], err, creds)
		}
	}
	r.announce(ctx, network, "PeerAdded", "added", added)
	r.announce(ctx, network, "PeerRemoved", "removed", removed)
	metrics.AddnodeChanges(added.entries, removed.entries)
	return len(added.changes) > 0 || len(removed.changes) > 0
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
}

// announce logs a round's rewiring and sends it as one event, its message cut to
// what an event holds.
func (r *PeerReconciler) announce(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, reason, verb string, w rewiring) {
	if w.entries == 0 {
		return
	}
	log.FromContext(ctx).Info("Rewired nodes", "action", verb, "entries", w.entries, "changes", w.changes)
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

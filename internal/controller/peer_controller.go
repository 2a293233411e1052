package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
	"github.com/bitcoinops/bitcoin-operator/internal/topology"
)

// PeerReconciler connects a network's ready nodes into one Bitcoin network: each node
// gets the addnode entries that internal/topology chooses, as ip:port. It asks every
// node for its added nodes, peers and chain each Period (and whenever a pod changes),
// which also notices a restarted bitcoind that has lost its list, and reports what the
// nodes say: the Connected and Synced conditions itself, peers and blocks through the
// status reconciler.
type PeerReconciler struct {
	client.Client
	// APIReader reads Secrets whole; the cache holds their metadata only.
	APIReader    client.Reader
	Renderer     *render.Renderer
	Recorder     record.EventRecorder
	Observations *observations
	// Period is how often a network's nodes are asked when nothing else happens.
	Period time.Duration

	nodes   rpcNodes
	written recentWrites
	// credentialsOf holds each network's credentials as last read, with the Secret's
	// resourceVersion then: a round reads the Secret whole only when the cache shows
	// that it changed.
	credentialsOf sync.Map
}

// peerStatus is the part of the status the peer reconciler owns.
type peerStatus struct {
	Conditions []metav1.Condition `json:"conditions"`
}

// Intervals between the rounds of a network that is still settling: after the
// reconciler changed addnode entries, and while it is not Connected and Synced.
const (
	settleAfterChange = time.Second
	settleWhileApart  = 5 * time.Second
	// callsAtOnce bounds the nodes of one network asked at the same time.
	callsAtOnce = 8
)

// Reconcile runs one round for a network: ask its ready nodes, wire them, report.
func (r *PeerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	network := &bitcoinv1alpha1.BitcoinNetwork{}
	if err := r.Get(ctx, req.NamespacedName, network); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	if network.UID == "" || !network.DeletionTimestamp.IsZero() {
		r.nodes.forget(req.NamespacedName)
		r.Observations.forget(req.NamespacedName)
		r.credentialsOf.Delete(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	creds, err := r.credentials(ctx, network)
	if err != nil || creds == nil {
		// No usable credentials: the network reconciler reports why in Degraded, and
		// the Secret's change wakes this reconciler.
		return ctrl.Result{}, err
	}
	nodes, err := r.readyNodes(ctx, network)
	if err != nil {
		return ctrl.Result{}, err
	}

	answers := r.ask(ctx, network, nodes, creds)
	changed := r.wire(ctx, network, nodes, answers, creds)
	connected, synced := connectedCondition(network, nodes, answers), syncedCondition(network, nodes, answers)
	if err := r.report(ctx, network, connected, synced); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.nextRound(req.NamespacedName, changed, connected, synced)}, nil
}

// credentials returns the network's credentials, read again only when the Secret's
// resourceVersion in the cache (which holds Secrets' metadata) moved on.
func (r *PeerReconciler) credentials(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) (*credentials, error) {
	name := secretName(network)
	meta := secretMetadata.DeepCopy()
	if err := r.Get(ctx, keyOf(network, name), meta); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	key := client.ObjectKeyFromObject(network)
	if cached, ok := r.credentialsOf.Load(key); ok {
		if c := cached.(*credentials); c.secret == name && c.version == meta.ResourceVersion {
			return c, nil
		}
	}
	creds, _, err := readCredentials(ctx, r.APIReader, network)
	if creds != nil {
		r.credentialsOf.Store(key, creds)
	}
	return creds, err
}

// readyNodes returns the network's ready nodes that have an IP, in ordinal order, with
// their RPC and P2P addresses.
func (r *PeerReconciler) readyNodes(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) ([]peerNode, error) {
	ports, err := r.Renderer.Ports(chainOf(network))
	if err != nil {
		return nil, err
	}
	sts, err := statefulSetOf(ctx, r.Client, network)
	if err != nil || sts == nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(network.Namespace),
		client.MatchingFields{indexPodNetwork: network.Name}); err != nil {
		return nil, fmt.Errorf("failed to list the network's pods: %w", err)
	}
	uids := map[string]types.UID{}
	for _, p := range pods.Items {
		uids[p.Name] = p.UID
	}
	var nodes []peerNode
	for _, n := range observeNodes(network, sts, pods.Items).Nodes {
		if n.Ready && n.IP != "" {
			nodes = append(nodes, peerNode{BitcoinNetworkNode: n, pod: uids[n.NodeName],
				rpc: hostPort(n.IP, ports.RPC), p2p: hostPort(n.IP, ports.P2P)})
		}
	}
	return nodes, nil
}

// ask calls each ready node whose retry is due, a few at a time, for its added nodes,
// peers and chain. A node not due keeps its last error.
func (r *PeerReconciler) ask(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, nodes []peerNode, creds *credentials) map[int32]answer {
	links := r.nodes.nodesOf(client.ObjectKeyFromObject(network))
	keep := map[types.UID]bool{}
	answers := make(map[int32]answer, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, callsAtOnce)
	now := time.Now()
	for _, n := range nodes {
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
	r.recordAnswers(ctx, network, nodes, links, answers, creds)
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

// recordAnswers schedules retries, tells the user about failures once each (an
// RPCFailed event), and hands the nodes' peers and blocks, and whether they refuse the
// credentials, to the reconcilers that report them.
func (r *PeerReconciler) recordAnswers(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, nodes []peerNode,
	links map[types.UID]*rpcNode, answers map[int32]answer, creds *credentials) {
	observed := map[int32]nodeObservation{}
	var refused []string
	for _, n := range nodes {
		a, link := answers[n.Ordinal], links[n.pod]
		switch {
		case a.err == nil:
			if link.succeeded() {
				log.FromContext(ctx).Info("Node answers RPC again", "node", n.NodeName)
			}
			observed[n.Ordinal] = nodeObservation{Peers: int32(len(a.peers)), Blocks: a.chain.Blocks}
			continue
		case !a.skipped:
			r.nodeFailed(ctx, network, n, link, a.err, creds)
		}
		if errors.Is(a.err, bitcoin.ErrUnauthorized) {
			refused = append(refused, n.NodeName)
		}
	}
	r.Observations.setNodes(network, observed)
	auth := ""
	if len(refused) > 0 {
		auth = fmt.Sprintf("%s the credentials in Secret %q (HTTP 401). Nodes rolling onto changed credentials refuse them until they restart; otherwise check that the pods run the StatefulSet's -rpcauth argument",
			subject(refused, "refuses", "refuse"), creds.secret)
	}
	r.Observations.setAuthFailure(network, auth)
}

// rpcFailure says what an RPC failure means for the user.
func rpcFailure(err error, creds *credentials) string {
	if errors.Is(err, bitcoin.ErrUnauthorized) {
		return fmt.Sprintf("refused the credentials in Secret %q (HTTP 401)", creds.secret)
	}
	return err.Error()
}

// wire makes each node's added-node list what the topology wants, and tells whether
// it changed any. New entries go in everywhere first; stale ones come out only once
// every ready node answered and took its new entries, so that each step of a scaling
// keeps the graph connected.
func (r *PeerReconciler) wire(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, nodes []peerNode, answers map[int32]answer, creds *credentials) bool {
	addrs := make([]string, len(nodes))
	names := make(map[string]string, len(nodes)) // P2P address to pod name
	for i, n := range nodes {
		addrs[i], names[n.p2p] = n.p2p, n.NodeName
	}
	want := topology.Peers(addrs)
	links := r.nodes.nodesOf(client.ObjectKeyFromObject(network))
	added, removed := rewiring{names: names}, rewiring{names: names}
	complete := true
	for _, n := range nodes {
		if answers[n.Ordinal].err != nil {
			complete = false
			continue
		}
		done, err := addPeers(ctx, links[n.pod].client, difference(want[n.p2p], answers[n.Ordinal].added))
		added.record(n, done)
		if err != nil {
			complete = false
			r.nodeFailed(ctx, network, n, links[n.pod], err, creds)
		}
	}
	if complete {
		for _, n := range nodes {
			done, err := removePeers(ctx, links[n.pod].client, difference(answers[n.Ordinal].added, want[n.p2p]))
			removed.record(n, done)
			if err != nil {
				r.nodeFailed(ctx, network, n, links[n.pod], err, creds)
			}
		}
	}
	r.announce(ctx, network, "PeerAdded", "added", added)
	r.announce(ctx, network, "PeerRemoved", "removed", removed)
	return len(added.changes) > 0 || len(removed.changes) > 0
}

// rewiring collects the entries a round added or removed, to announce them in one
// event: the API server's spam filter allows an object about 25 events in a burst, so
// one per node and entry would silence a large network's later events.
type rewiring struct {
	names   map[string]string // P2P address to pod name
	changes []string          // "<node>: <peer>, <peer>"
	entries int
}

func (w *rewiring) record(n peerNode, peers []string) {
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

// nodeFailed schedules the node's retry and announces a failure the first time it
// happens (an RPCFailed event), not at every retry.
func (r *PeerReconciler) nodeFailed(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, n peerNode, link *rpcNode, err error, creds *credentials) {
	if !link.failed(err, time.Now()) {
		return
	}
	log.FromContext(ctx).Info("Node failed an RPC call", "node", n.NodeName, "error", err.Error(), "retryAt", link.retryAt)
	r.Recorder.Eventf(network, corev1.EventTypeWarning, "RPCFailed", "Node %s at %s: %s; retrying with backoff",
		n.NodeName, n.rpc, rpcFailure(err, creds))
}

// report writes the Connected and Synced conditions if they changed.
func (r *PeerReconciler) report(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, conds ...metav1.Condition) error {
	changed := false
	for _, c := range conds {
		changed = changed || conditionChanged(network, c)
	}
	status := peerStatus{Conditions: conds}
	if !changed || r.written.justWrote(network.UID, status) {
		return nil
	}
	if err := applyStatus(ctx, r.Client, network, peerStatusOwner, status); err != nil {
		return fmt.Errorf("failed to update the network's peer status: %w", err)
	}
	r.written.wrote(network.UID, status)
	return nil
}

// nextRound is when to ask the network's nodes again: soon while the network settles,
// at the next due retry of a failing node, and otherwise after about one Period, with
// jitter so that networks created together do not poll together.
func (r *PeerReconciler) nextRound(key types.NamespacedName, changed bool, conds ...metav1.Condition) time.Duration {
	next := r.Period + time.Duration(rand.Int64N(int64(r.Period)/5+1)) - r.Period/10
	if changed {
		next = min(next, settleAfterChange)
	}
	for _, c := range conds {
		if c.Status != metav1.ConditionTrue && c.Reason != "NoReadyNodes" {
			next = min(next, settleWhileApart)
		}
	}
	now := time.Now()
	for _, n := range r.nodes.nodesOf(key) {
		if !n.retryAt.IsZero() {
			next = min(next, max(n.retryAt.Sub(now), 0)+10*time.Millisecond)
		}
	}
	return next
}

// SetupWithManager watches networks, their pods and the Secrets of their credentials.
func (r *PeerReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("bitcoinnetwork-peers").
		WithOptions(opts).
		For(&bitcoinv1alpha1.BitcoinNetwork{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A pod's IP, readiness or restarts change whom its node should add, or
		// whether it still has its list.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(networkOfPod), builder.WithPredicates(podPeeringChanged)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(networksOfSecret(r.Client))).
		Complete(r)
}

func chainOf(network *bitcoinv1alpha1.BitcoinNetwork) bitcoinv1alpha1.Chain {
	if network.Spec.Chain == "" {
		return bitcoinv1alpha1.Regtest
	}
	return network.Spec.Chain
}

func hostPort(ip string, port int32) string {
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

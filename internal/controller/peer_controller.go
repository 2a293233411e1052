package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// PeerReconciler connects a network's ready nodes into one Bitcoin network: each node
// gets the addnode entries that internal/topology chooses, as ip:port. It asks every
// node for its added nodes, peers and chain each Period (and whenever a pod changes),
// which also notices a restarted bitcoind that has lost its list, and reports what the
// nodes say (peers, blocks, and the Connected, Synced and Partitioned conditions it
// concludes) through the status reconciler, which writes them with the pods' changes.
//
// Three things here are about nodes: a readyNode is a node of the round (a ready pod
// with an IP), an rpcLink is the reconciler's RPC client of a pod and its backoff, and
// status.nodes entries belong to the status reconciler.
type PeerReconciler struct {
	client.Client
	// APIReader reads Secrets whole; the cache holds their metadata only.
	APIReader    client.Reader
	Renderer     *render.Renderer
	Recorder     record.EventRecorder
	Observations *observations
	// Period is how often a network's nodes are asked when nothing else happens.
	Period time.Duration

	rounds *peerRounds
	// creds holds each network's credentials as last read, with the Secret's
	// resourceVersion then: a round reads the Secret whole only when the cache shows
	// that it changed.
	creds networkMemory[*credentials]
	// miningKeys holds the address of each network's generated mining key as last read.
	miningKeys networkMemory[miningAddressOf]
}

// Intervals between the rounds of a network that is still settling: after the
// reconciler changed addnode entries, and while it is not Connected and Synced.
const (
	settleAfterChange = time.Second
	settleWhileApart  = 5 * time.Second
)

// Reconcile reports the network's round that ended, if one did, and starts the next
// when it is due. The rounds themselves run in the background (peer_rounds.go): a
// reconcile never waits on a node.
func (r *PeerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	network, err := liveNetwork(ctx, r.Client, req.NamespacedName)
	if network == nil || err != nil {
		if err == nil {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	creds, err := r.credentials(ctx, network)
	if err != nil || creds == nil {
		// No usable credentials: the network reconciler reports why in Degraded, and
		// the Secret's change wakes this reconciler.
		return ctrl.Result{}, err
	}
	ready, err := r.readyNodes(ctx, network)
	if err != nil {
		return ctrl.Result{}, err
	}
	state := r.rounds.of(network)
	if ended := state.takeFinished(); ended != nil {
		r.report(network, state, ended)
	}
	plan, err := r.miningPlanOf(ctx, network)
	if err != nil {
		return ctrl.Result{}, err
	}
	s := splitOf(network)
	round := &peerRound{ready: ready, creds: creds, mining: plan, split: s, key: roundKey(ready, creds, plan, s)}
	if !state.bansLeftKnown {
		// A restarted operator does not know whether a split's bans remain: the
		// status says whether the network was split.
		state.bansLeft, state.bansLeftKnown = meta.FindStatusCondition(network.Status.Conditions, bitcoinv1alpha1.ConditionPartitioned) != nil &&
			meta.FindStatusCondition(network.Status.Conditions, bitcoinv1alpha1.ConditionPartitioned).Reason != reasonNotRequested, true
	}
	due, wait := state.due(round.key, time.Now())
	if !due {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	r.rounds.start(network, state, round, r.runRound)
	return ctrl.Result{RequeueAfter: roundDeadline}, nil
}

// runRound is a round's work, off the reconcile workers: ask the nodes, wire them,
// keep partitions apart, mine.
func (r *PeerReconciler) runRound(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, state *roundState, round *peerRound) {
	round.answers = r.ask(ctx, network, round.ready, round.creds, state.links)
	r.reportReorgs(ctx, network, round.ready, round.answers)
	var dialed []int32
	round.changed, dialed = r.wire(ctx, network, round.ready, round.answers, round.creds, state.links, round.split, &state.heldRewiring)
	r.recheckPeers(ctx, round.ready, round.answers, state.links, dialed)
	state.bansLeft = r.keepApart(ctx, network, round, state.links, state.bansLeft)
	round.mined = r.mine(ctx, network, round, state.links, &state.mining)
	round.retryAt = earliestRetry(state.links)
}

// report publishes what a round found, the Connected, Synced and Partitioned
// conditions and the mining status with it, and schedules the next round. The status
// reconciler writes them (observations.go).
func (r *PeerReconciler) report(network *bitcoinv1alpha1.BitcoinNetwork, state *roundState, ended *peerRound) {
	connected := connectedCondition(network, ended.ready, ended.answers, ended.split)
	synced := syncedCondition(network, ended.ready, ended.answers, ended.split)
	partitioned := partitionedCondition(network, ended.ready, ended.answers, ended.split)
	reportPeerMetrics(network, ended, connected, synced, partitioned)
	mining := r.throttledMining(network, state, miningStatus(ended.mining, ended))
	if !equality.Semantic.DeepEqual(mining, network.Status.Mining) {
		state.miningWrittenAt = time.Now()
	}
	r.publish(network, ended.ready, ended.answers, ended.creds,
		peerStatus{Mining: mining, Conditions: []metav1.Condition{connected, synced, partitioned}})
	state.scheduleNext(time.Now().Add(r.nextRound(ended, state, connected, synced, partitioned)))
}

// throttledMining keeps the height status.mining shows while only the height moved
// and it was written less than a period ago: blocks mined by interval refresh it with
// the regular rounds, not one write per block.
func (r *PeerReconciler) throttledMining(network *bitcoinv1alpha1.BitcoinNetwork, state *roundState,
	s *bitcoinv1alpha1.BitcoinNetworkMiningStatus) *bitcoinv1alpha1.BitcoinNetworkMiningStatus {
	shown := network.Status.Mining
	if s == nil || shown == nil || shown.Address != s.Address || shown.Height == nil || time.Since(state.miningWrittenAt) >= r.Period {
		return s
	}
	kept := *s
	kept.Height = shown.Height
	return &kept
}

// forget drops what the reconciler and its observations hold of a network that is gone.
func (r *PeerReconciler) forget(key types.NamespacedName) {
	r.rounds.forget(key)
	r.creds.forget(key)
	r.miningKeys.forget(key)
	r.Observations.forget(key)
	metrics.ForgetPeers(metricsNetwork(key))
}

// credentials returns the network's credentials, read again only when the Secret's
// resourceVersion in the cache (which holds Secrets' metadata) moved on.
func (r *PeerReconciler) credentials(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) (*credentials, error) {
	name := secretName(network)
	meta := secretMetadata.DeepCopy()
	if err := r.Get(ctx, keyOf(network, name), meta); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if c, ok := r.creds.load(network); ok && c.secret == name && c.version == meta.ResourceVersion {
		return c, nil
	}
	creds, _, err := readCredentials(ctx, r.APIReader, network)
	if creds != nil {
		r.creds.store(network, creds)
	}
	return creds, err
}

// readyNodes returns the network's ready nodes that have an IP, in ordinal order, with
// their RPC and P2P addresses.
func (r *PeerReconciler) readyNodes(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) ([]readyNode, error) {
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
	byName := map[string]*corev1.Pod{}
	for i := range pods.Items {
		byName[pods.Items[i].Name] = &pods.Items[i]
	}
	var ready []readyNode
	for _, n := range observeNodes(network, sts, pods.Items).Nodes {
		if n.Ready && n.IP != "" {
			pod := byName[n.NodeName]
			ready = append(ready, readyNode{BitcoinNetworkNode: n, pod: pod.UID, restarts: restarts(pod),
				rpc: hostPort(n.IP, ports.RPC), p2p: hostPort(n.IP, ports.P2P)})
		}
	}
	return ready, nil
}

// publish hands what the nodes said to the reconcilers that report it: the peers and
// blocks of those that answered, with the round's conditions and mining status, to
// the status reconciler, and whether any refuse the credentials to the network
// reconciler.
func (r *PeerReconciler) publish(network *bitcoinv1alpha1.BitcoinNetwork, ready []readyNode, answers map[int32]answer, creds *credentials, round peerStatus) {
	observed := map[int32]nodeObservation{}
	var refused []string
	for _, n := range ready {
		switch a := answers[n.Ordinal]; {
		case a.err == nil:
			observed[n.Ordinal] = r.observation(network, n.Ordinal, a)
		case errors.Is(a.err, bitcoin.ErrUnauthorized):
			refused = append(refused, n.NodeName)
		}
	}
	r.Observations.setRound(network, observed, round)
	auth := ""
	if len(refused) > 0 {
		auth = fmt.Sprintf("%s the credentials in Secret %q (HTTP 401). Nodes rolling onto changed credentials refuse them until they restart; otherwise check that the pods run the StatefulSet's -rpcauth argument",
			subject(refused, "refuses", "refuse"), creds.secret)
	}
	r.Observations.setAuthFailure(network, auth)
}

// peerStatus is the part of the status a round concludes: the status reconciler
// writes it.
type peerStatus struct {
	Mining     *bitcoinv1alpha1.BitcoinNetworkMiningStatus `json:"mining,omitempty"`
	Conditions []metav1.Condition                          `json:"conditions"`
}

// nextRound is how long after a round the next is due: soon while the network
// settles, at the next due retry of a failing node, and otherwise after about one
// Period, with jitter so that networks created together do not poll together.
func (r *PeerReconciler) nextRound(ended *peerRound, state *roundState, conds ...metav1.Condition) time.Duration {
	next := r.Period + time.Duration(rand.Int64N(int64(r.Period)/5+1)) - r.Period/10
	if ended.changed {
		next = min(next, settleAfterChange)
	}
	for _, c := range conds {
		// Partitioned is False when no split is asked for: that is settled too.
		if c.Status != metav1.ConditionTrue && c.Reason != "NoReadyNodes" && c.Reason != reasonNotRequested {
			next = min(next, settleWhileApart)
		}
	}
	if p := ended.mining; p != nil && p.interval > 0 {
		next = min(next, max(time.Until(state.mining.lastBlockAt.Add(p.interval)), 0)+10*time.Millisecond)
	}
	if ended.mined != nil && ended.mined.blocks > 0 && ended.mining.minHeight > ended.mined.height {
		next = min(next, settleAfterChange) // more of minHeight to mine
	}
	if !ended.retryAt.IsZero() {
		next = min(next, max(time.Until(ended.retryAt), 0)+10*time.Millisecond)
	}
	return next
}

// SetupWithManager runs the rounds with the manager, and watches networks, their pods,
// the Secrets of their credentials and the rounds that end.
func (r *PeerReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if err := mgr.Add(r.rounds); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("bitcoinnetwork-peers").
		WithOptions(opts).
		For(&bitcoinv1alpha1.BitcoinNetwork{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A pod's IP, readiness or restarts change whom its node should add, or
		// whether it still has its list.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(networkOfPod), builder.WithPredicates(podPeeringChanged)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(networksOfSecret(r.Client))).
		// A round that ended is reported at once.
		WatchesRawSource(observed(r.rounds.ended)).
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

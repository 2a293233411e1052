package controller

import (
	"maps"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// observations carry what the peer reconciler learns over RPC to the reconcilers that
// write it into the status: each node's peers and blocks, and the round's conditions
// and mining status, to the status reconciler (which owns status.nodes whole, so that
// no node entry is ever split between two field managers, and writes a round's
// findings together with the pods' changes), and failed authentication to the network
// reconciler (which owns Degraded). The status reconciler adds what it sees in the pods: a
// rollout that is stuck, for Degraded too. Each change wakes the reconciler concerned through a channel
// source instead of waiting for a resync.
type observations struct {
	networks networkMemory[networkObservation]
	// nodes wakes the status reconciler; auth and rollout the network reconciler.
	nodes, auth, rollout chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]
}

type networkObservation struct {
	nodes map[int32]nodeObservation // by ordinal
	// round holds the conditions and mining status of the last round; nil before one.
	round *peerStatus
	// authFailure is a message for Degraded when the nodes refuse the credentials.
	authFailure string
	// rolloutStuck is a message for Degraded when a pod is stuck in the rollout.
	rolloutStuck string
}

// nodeObservation is what a node last answered.
type nodeObservation struct {
	Peers, Inbound, Outbound int32
	Blocks                   int64
	BestBlockHash            string
	Subversion               string
	Reorgs                   int32
}

func newObservations() *observations {
	// Buffered so that the peer reconciler never waits for another controller's queue.
	return &observations{
		nodes:   make(chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork], 1024),
		auth:    make(chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork], 1024),
		rollout: make(chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork], 1024),
	}
}

// setRound records what a round found: the nodes that answered (keeping what the
// others answered last), the conditions and the mining status. It wakes the status
// reconciler if anything changed, once for all of it.
func (o *observations) setRound(network *bitcoinv1alpha1.BitcoinNetwork, answered map[int32]nodeObservation, round peerStatus) {
	changed := false
	o.networks.update(network, func(obs networkObservation, _ bool) networkObservation {
		merged := maps.Clone(obs.nodes)
		if merged == nil {
			merged = map[int32]nodeObservation{}
		}
		maps.Copy(merged, answered)
		changed = !maps.Equal(obs.nodes, merged) || obs.round == nil || statusKey(*obs.round) != statusKey(round)
		obs.nodes, obs.round = merged, &round
		return obs
	})
	if changed {
		o.nodes <- event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]{Object: network}
	}
}

// setAuthFailure records whether the nodes refuse the network's credentials, and wakes
// the network reconciler if that changed.
func (o *observations) setAuthFailure(network *bitcoinv1alpha1.BitcoinNetwork, message string) {
	o.setMessage(network, func(obs *networkObservation) *string { return &obs.authFailure }, message, o.auth)
}

// setRolloutStuck records the message of a stuck rollout (empty: none), and wakes the
// network reconciler if that changed.
func (o *observations) setRolloutStuck(network *bitcoinv1alpha1.BitcoinNetwork, message string) {
	o.setMessage(network, func(obs *networkObservation) *string { return &obs.rolloutStuck }, message, o.rollout)
}

// setMessage records one of a network's messages for the network reconciler, and
// sends the network to wake when the message changed.
func (o *observations) setMessage(network *bitcoinv1alpha1.BitcoinNetwork, field func(*networkObservation) *string,
	message string, wake chan<- event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]) {
	changed := false
	o.networks.update(network, func(obs networkObservation, _ bool) networkObservation {
		f := field(&obs)
		changed = *f != message
		*f = message
		return obs
	})
	if changed {
		wake <- event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]{Object: network}
	}
}

// rolloutStuck returns the message for a network whose rollout is stuck.
func (o *observations) rolloutStuck(network *bitcoinv1alpha1.BitcoinNetwork) string {
	obs, _ := o.networks.load(network)
	return obs.rolloutStuck
}

// node returns what a node last answered, if it ever did.
func (o *observations) node(network *bitcoinv1alpha1.BitcoinNetwork, ordinal int32) (nodeObservation, bool) {
	obs, _ := o.networks.load(network)
	n, ok := obs.nodes[ordinal]
	return n, ok
}

// round returns the conditions and mining status of the network's last round, if one
// ended since the operator started.
func (o *observations) round(network *bitcoinv1alpha1.BitcoinNetwork) (peerStatus, bool) {
	obs, _ := o.networks.load(network)
	if obs.round == nil {
		return peerStatus{}, false
	}
	return *obs.round, true
}

// authFailure returns the message for a network whose nodes refuse its credentials.
func (o *observations) authFailure(network *bitcoinv1alpha1.BitcoinNetwork) string {
	obs, _ := o.networks.load(network)
	return obs.authFailure
}

// forget drops a network that is gone or being deleted.
func (o *observations) forget(key types.NamespacedName) { o.networks.forget(key) }

// observed returns a source that enqueues the networks sent on ch.
func observed(ch chan event.TypedGenericEvent[*bitcoinv1alpha1.BitcoinNetwork]) source.Source {
	return source.Channel(ch, &handler.TypedEnqueueRequestForObject[*bitcoinv1alpha1.BitcoinNetwork]{})
}

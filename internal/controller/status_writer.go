package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// Field managers. The network reconciler applies the children under fieldOwner. The
// network and status reconcilers each apply their part of the status under a manager
// of their own, through a statusWriter, so that server-side apply keeps their fields
// apart: a field a reconciler leaves out is removed, and the other's fields stay.
const (
	fieldOwner = "bitcoin-operator"
	// networkStatusOwner: observedGeneration, secretName, image and Degraded, which
	// follow the spec.
	networkStatusOwner = "bitcoin-operator-network"
	// nodeStatusOwner: what the nodes show. replicas, readyNodes, selector, nodes
	// (whole, so that no node's entry is split between two managers) and Available
	// from the pods; mining, Connected, Synced and Partitioned from the peer
	// reconciler's rounds, which it hands over (observations.go) so that a round's
	// findings and the pods' changes go out in one write. Earlier operators applied
	// the round's part under "bitcoin-operator-peers"; applying with force takes it over.
	nodeStatusOwner = "bitcoin-operator-status"
)

// ownedStatus is the part of a network's status that one reconciler owns, as that
// reconciler computed it from what it observed.
type ownedStatus interface {
	// changedFrom tells whether the network's status shows something else.
	changedFrom(network *bitcoinv1alpha1.BitcoinNetwork) bool
	// maxHold returns how long what changed may wait for the next write: 0 for what
	// users wait for (a node turning ready, a condition turning True or False),
	// which is written at once; longer for the rest (a pod's entry before it is
	// ready, peers, blocks, messages).
	maxHold(network *bitcoinv1alpha1.BitcoinNetwork) time.Duration
}

// Pacing of status writes. A network coming up changes its status many times a
// second (pods created, given IPs, turning ready, rounds hearing peers and blocks);
// written one by one, those patches were most of the API server's load while a fleet
// came up. The writers of a network share one pacer, so that it gets at most one
// status write per statusWriteGap, and changes that are not urgent ride along with the
// next write or go out when they have waited their maxHold.
const (
	statusWriteGap = 500 * time.Millisecond
	// lazyStatusDelay is how long a change that is not urgent may wait.
	lazyStatusDelay = 5 * time.Second
	// lazyWhileComingUp is how long it may wait while nodes are still to turn
	// ready: each of them brings a write that carries it.
	lazyWhileComingUp = 30 * time.Second
	// recentWriteTTL bounds how long a write is trusted over the cache: far longer
	// than the cache takes to catch up, short enough that a status changed by someone
	// else is restored soon.
	recentWriteTTL = 10 * time.Second
)

// statusWriter is the one way a reconciler writes status. It owns the reconciler's
// field manager and writes only when the status changed, when it is time to (the
// pacer above), and when it was not written moments ago: a reconcile that follows its
// own write before the cache has caught up with it (the children's creation events
// start one at once) would otherwise see the old status and write the same again.
type statusWriter struct {
	client  client.Client
	manager string
	pacer   *statusPacer
	recent  networkMemory[recentWrite]
}

func newStatusWriter(c client.Client, manager string, pacer *statusPacer) *statusWriter {
	return &statusWriter{client: c, manager: manager, pacer: pacer}
}

type recentWrite struct {
	status string // statusKey of what was written
	at     time.Time
	// heldSince is when the writer first held back a change that was not urgent;
	// zero when it holds none.
	heldSince time.Time
}

// write applies status if the network does not show it yet and it is time to. It
// tells whether it wrote and, when it held the status back, how long to wait before
// trying again: the caller requeues the network for then.
func (w *statusWriter) write(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, status ownedStatus) (bool, time.Duration, error) {
	if !status.changedFrom(network) || w.justWrote(network, status) {
		return false, 0, nil
	}
	now := time.Now()
	if wait := w.holdFor(network, status, now); wait > 0 {
		return false, wait, nil
	}
	if err := applyStatus(ctx, w.client, network, w.manager, status); err != nil {
		return false, 0, fmt.Errorf("failed to update the network's status (%s): %w", w.manager, err)
	}
	w.recent.store(network, recentWrite{status: statusKey(status), at: now})
	w.pacer.wrote(network, now)
	return true, 0, nil
}

// holdFor returns how long a changed status waits: until statusWriteGap has passed
// since the network's last status write and, for a change that is not urgent, until
// its maxHold has passed since the writer first held one back.
func (w *statusWriter) holdFor(network *bitcoinv1alpha1.BitcoinNetwork, status ownedStatus, now time.Time) time.Duration {
	wait := w.pacer.wait(network, now)
	if hold := status.maxHold(network); hold > 0 {
		held := w.recent.update(network, func(r recentWrite, _ bool) recentWrite {
			if r.heldSince.IsZero() {
				r.heldSince = now
			}
			return r
		})
		wait = max(wait, held.heldSince.Add(hold).Sub(now))
	}
	return wait
}

// justWrote tells whether status, transition times aside, is what was written to the
// network within recentWriteTTL.
func (w *statusWriter) justWrote(network *bitcoinv1alpha1.BitcoinNetwork, status ownedStatus) bool {
	last, ok := w.recent.load(network)
	return ok && last.status == statusKey(status) && time.Since(last.at) < recentWriteTTL
}

// forget drops what the writer remembers of a network that is gone.
func (w *statusWriter) forget(key types.NamespacedName) {
	w.recent.forget(key)
	w.pacer.last.forget(key)
}

// statusPacer remembers when each network's status was last written, by any writer.
type statusPacer struct {
	last networkMemory[time.Time]
}

func (p *statusPacer) wrote(network *bitcoinv1alpha1.BitcoinNetwork, at time.Time) {
	p.last.store(network, at)
}

// wait returns how long until the network may be written again.
func (p *statusPacer) wait(network *bitcoinv1alpha1.BitcoinNetwork, now time.Time) time.Duration {
	last, ok := p.last.load(network)
	if !ok {
		return 0
	}
	return max(last.Add(statusWriteGap).Sub(now), 0)
}

// conditionsUrgent tells whether a condition turns True, False or Unknown, or changes
// its reason or generation, against what the network shows. A condition that first
// appears urgently only when True: one that appears False says "not yet", which
// the next write may carry.
func conditionsUrgent(network *bitcoinv1alpha1.BitcoinNetwork, conds []metav1.Condition) bool {
	for _, c := range conds {
		old := meta.FindStatusCondition(network.Status.Conditions, c.Type)
		if old == nil && c.Status == metav1.ConditionTrue ||
			old != nil && (old.Status != c.Status || old.Reason != c.Reason || old.ObservedGeneration != c.ObservedGeneration) {
			return true
		}
	}
	return false
}

// applyStatus server-side applies one reconciler's part of a network's status through
// the status subresource. status holds exactly the fields that manager owns.
func applyStatus(ctx context.Context, c client.Client, n *bitcoinv1alpha1.BitcoinNetwork, manager string, status any) error {
	fields, err := jsonMap(status)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": bitcoinv1alpha1.GroupVersion.String(),
		"kind":       networkKind,
		"metadata":   map[string]any{"name": n.Name, "namespace": n.Namespace},
		"status":     fields,
	}}
	return c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(manager), client.ForceOwnership)
}

// statusKey is a status's JSON without the conditions' transition times, which a
// reconcile reading a stale cache computes anew.
func statusKey(status any) string {
	fields, _ := jsonMap(status)
	if conditions, ok := fields["conditions"].([]any); ok {
		for _, c := range conditions {
			if c, ok := c.(map[string]any); ok {
				delete(c, "lastTransitionTime")
			}
		}
	}
	data, _ := json.Marshal(fields)
	return string(data)
}

package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// Field managers. The network reconciler applies the children under fieldOwner. Each
// reconciler applies its own part of the status under a manager of its own, through a
// statusWriter, so that server-side apply keeps their fields apart: a field a
// reconciler leaves out is removed, and the other reconcilers' fields stay.
const (
	fieldOwner = "bitcoin-operator"
	// networkStatusOwner: observedGeneration, secretName and Degraded.
	networkStatusOwner = "bitcoin-operator-network"
	// nodeStatusOwner: replicas, readyNodes, selector, nodes (whole, so that no
	// node's entry is split between two managers) and Available.
	nodeStatusOwner = "bitcoin-operator-status"
	// peerStatusOwner: Connected and Synced.
	peerStatusOwner = "bitcoin-operator-peers"
)

// ownedStatus is the part of a network's status that one reconciler owns, as that
// reconciler computed it from what it observed.
type ownedStatus interface {
	// changedFrom tells whether the network's status shows something else.
	changedFrom(network *bitcoinv1alpha1.BitcoinNetwork) bool
}

// statusWriter is the one way a reconciler writes status. It owns the reconciler's
// field manager, and writes only when the status changed and was not written moments
// ago: a reconcile that follows its own write before the cache has caught up with it
// (the children's creation events start one at once) would otherwise see the old
// status and write the same again.
type statusWriter struct {
	client  client.Client
	manager string
	recent  networkMemory[recentWrite]
}

func newStatusWriter(c client.Client, manager string) *statusWriter {
	return &statusWriter{client: c, manager: manager}
}

type recentWrite struct {
	status string // statusKey of what was written
	at     time.Time
}

// recentWriteTTL bounds how long a write is trusted over the cache: far longer than
// the cache takes to catch up, short enough that a status changed by someone else is
// restored soon.
const recentWriteTTL = 10 * time.Second

// write applies status if the network does not show it yet, and tells whether it did.
func (w *statusWriter) write(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, status ownedStatus) (bool, error) {
	if !status.changedFrom(network) || w.justWrote(network, status) {
		return false, nil
	}
	if err := applyStatus(ctx, w.client, network, w.manager, status); err != nil {
		return false, fmt.Errorf("failed to update the network's status (%s): %w", w.manager, err)
	}
	w.recent.store(network, recentWrite{status: statusKey(status), at: time.Now()})
	return true, nil
}

// justWrote tells whether status, transition times aside, is what was written to the
// network within recentWriteTTL.
func (w *statusWriter) justWrote(network *bitcoinv1alpha1.BitcoinNetwork, status ownedStatus) bool {
	last, ok := w.recent.load(network)
	return ok && last.status == statusKey(status) && time.Since(last.at) < recentWriteTTL
}

// forget drops what the writer remembers of a network that is gone.
func (w *statusWriter) forget(key types.NamespacedName) { w.recent.forget(key) }

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

package controller

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// applyStatus server-side applies one reconciler's part of a network's status through
// the status subresource. status holds exactly the fields that manager owns: a field it
// leaves out is removed, and the fields and condition types of the other managers stay.
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

// condition returns a condition of the network's current generation. It keeps the
// LastTransitionTime of the network's existing condition of that type when the status
// did not change, as meta.SetStatusCondition would.
func condition(n *bitcoinv1alpha1.BitcoinNetwork, typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	c := metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: n.Generation,
		LastTransitionTime: metav1.Now(),
	}
	if old := meta.FindStatusCondition(n.Status.Conditions, typ); old != nil && old.Status == status {
		c.LastTransitionTime = old.LastTransitionTime
	}
	return c
}

// conditionChanged tells whether the network's condition of c's type differs from c in
// anything but its LastTransitionTime.
func conditionChanged(n *bitcoinv1alpha1.BitcoinNetwork, c metav1.Condition) bool {
	old := meta.FindStatusCondition(n.Status.Conditions, c.Type)
	return old == nil || old.Status != c.Status || old.Reason != c.Reason ||
		old.Message != c.Message || old.ObservedGeneration != c.ObservedGeneration
}

// recentWrites remembers, for a few seconds, what a reconciler last wrote to each
// network's status. A reconcile that follows its own write before the cache has caught
// up with it (the children's creation events start one at once) would otherwise see
// the old status and write the same again.
type recentWrites struct {
	mu     sync.Mutex
	writes map[types.UID]recentWrite
}

type recentWrite struct {
	status string
	at     time.Time
}

// recentWriteTTL bounds how long a write is trusted over the cache: far longer than
// the cache takes to catch up, short enough that a status changed by someone else is
// restored soon.
const recentWriteTTL = 10 * time.Second

// justWrote tells whether status, transition times aside, is what was written to the
// network within recentWriteTTL.
func (w *recentWrites) justWrote(uid types.UID, status any) bool {
	key := statusKey(status)
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.writes[uid]
	return ok && last.status == key && time.Since(last.at) < recentWriteTTL
}

// wrote records a write, and forgets the writes that are too old to trust.
func (w *recentWrites) wrote(uid types.UID, status any) {
	key := statusKey(status)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writes == nil {
		w.writes = map[types.UID]recentWrite{}
	}
	for id, old := range w.writes {
		if time.Since(old.at) >= recentWriteTTL {
			delete(w.writes, id)
		}
	}
	w.writes[uid] = recentWrite{status: key, at: time.Now()}
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

package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// applyResult says what applyIfChanged did.
type applyResult int

const (
	unchanged applyResult = iota // the live object already matched: nothing was sent
	created                      // the object did not exist
	updated                      // the live object differed from what we apply
	awaited                      // created moments ago and not in the cache yet: nothing was sent
)

// cacheLag is how long a child this operator created may be missing from its cache
// without being applied again. Under a fleet's load the cache trails the API server by
// up to seconds, and a reconcile in that time (another child's creation triggers one)
// would send the object again and announce it as created twice.
const cacheLag = 5 * time.Second

// creations remembers when the operator created each network's children, by kind and
// name, for cacheLag.
type creations struct {
	networkMemory[map[string]time.Time]
}

// record remembers that the child was created at now, and drops what is older than
// cacheLag.
func (c *creations) record(network *bitcoinv1alpha1.BitcoinNetwork, kind, name string, now time.Time) {
	c.update(network, func(old map[string]time.Time, _ bool) map[string]time.Time {
		fresh := map[string]time.Time{kind + "/" + name: now}
		for name, at := range old {
			if now.Sub(at) < cacheLag {
				fresh[name] = at
			}
		}
		return fresh
	})
}

// recent tells whether the child was created less than cacheLag before now.
func (c *creations) recent(network *bitcoinv1alpha1.BitcoinNetwork, kind, name string, now time.Time) bool {
	children, _ := c.load(network)
	at, ok := children[kind+"/"+name]
	return ok && now.Sub(at) < cacheLag
}

// applyIfChanged server-side applies desired under fieldOwner unless the live object
// already holds it. A no-op apply is still a PATCH request, so it first compares desired
// with what fieldOwner last applied, read from the live object's managedFields by
// extract: a field someone else changed (or took over) no longer shows as ours, and the
// comparison fails until the apply has restored it.
//
// The live object comes from the cache, with no GET: an object the cache does not hold
// is applied, unless justCreated says the operator created it less than cacheLag ago
// and the cache has yet to show it (awaited; the caller comes back once cacheLag has
// passed). A GET before every create would be one more request per object.
func applyIfChanged[T client.Object, AC runtime.ApplyConfiguration](
	ctx context.Context, c client.Client, key types.NamespacedName, live T, desired AC,
	extract func(T, string) (AC, error), justCreated bool,
) (applyResult, error) {
	result := updated
	switch err := c.Get(ctx, key, live); {
	case apierrors.IsNotFound(err) && justCreated:
		return awaited, nil
	case apierrors.IsNotFound(err):
		result = created
	case err != nil:
		return unchanged, err
	default:
		applied, err := extract(live, fieldOwner)
		if err != nil {
			return unchanged, fmt.Errorf("failed to read what was last applied: %w", err)
		}
		same, err := equalJSON(applied, desired)
		if err != nil || same {
			return unchanged, err
		}
	}
	if err := c.Apply(ctx, desired, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return unchanged, err
	}
	return result, nil
}

// equalJSON compares what was applied with what is desired by their JSON form, in
// which quantities and other values with several spellings take their canonical one.
func equalJSON(applied, desired any) (bool, error) {
	a, err := jsonMap(applied)
	if err != nil {
		return false, err
	}
	d, err := jsonMap(desired)
	if err != nil {
		return false, err
	}
	dropServerDefaults(a)
	return reflect.DeepEqual(a, d), nil
}

// jsonMap returns v's JSON form as a map.
func jsonMap(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

// dropServerDefaults removes from what was applied the fields that the API server
// fills in inside atomic values we own as a whole. A StatefulSet's volumeClaimTemplates
// is an atomic list: its entries come back with the status.phase Pending that the
// server defaults, and would never equal the chart's.
func dropServerDefaults(applied map[string]any) {
	templates, _, _ := unstructured.NestedSlice(applied, "spec", "volumeClaimTemplates")
	for _, t := range templates {
		if t, ok := t.(map[string]any); ok {
			delete(t, "status")
		}
	}
	if templates != nil {
		_ = unstructured.SetNestedSlice(applied, templates, "spec", "volumeClaimTemplates")
	}
}

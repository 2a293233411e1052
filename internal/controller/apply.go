package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// applyResult says what applyIfChanged did.
type applyResult int

const (
	unchanged applyResult = iota // the live object already matched: nothing was sent
	created                      // the object did not exist
	updated                      // the live object differed from what we apply
)

// applyIfChanged server-side applies desired under fieldOwner unless the live object
// already holds it. A no-op apply is still a PATCH request, so it first compares desired
// with what fieldOwner last applied, read from the live object's managedFields by
// extract: a field someone else changed (or took over) no longer shows as ours, and the
// comparison fails until the apply has restored it.
func applyIfChanged[T client.Object, AC runtime.ApplyConfiguration](
	ctx context.Context, c client.Client, key types.NamespacedName, live T, desired AC,
	extract func(T, string) (AC, error),
) (applyResult, error) {
	result := updated
	switch err := c.Get(ctx, key, live); {
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

// equalJSON compares two values by their JSON form, in which quantities and other
// values with several spellings take their canonical one.
func equalJSON(a, b any) (bool, error) {
	var av, bv any
	for _, p := range []struct {
		from any
		to   *any
	}{{a, &av}, {b, &bv}} {
		data, err := json.Marshal(p.from)
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal(data, p.to); err != nil {
			return false, err
		}
	}
	return reflect.DeepEqual(av, bv), nil
}

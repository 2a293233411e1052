package metrics

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// CountWrites wraps the reconcilers' client so that every write request it sends
// (create, update, patch, apply, delete; of objects and of their status) counts in
// api_writes_total, by the object's kind. Reads pass untouched. Events go through the
// manager's recorder, not this client, and are not counted.
func CountWrites(c client.Client) client.Client {
	kind := func(obj runtime.Object) string {
		if gvk, err := apiutil.GVKForObject(obj, c.Scheme()); err == nil {
			return gvk.Kind
		}
		return "unknown"
	}
	// client-go's apply configurations name their kind by pointer; the unstructured
	// ones the status writer sends, as a string.
	applyKind := func(obj runtime.ApplyConfiguration) string {
		switch k := obj.(type) {
		case interface{ GetKind() *string }:
			if k.GetKind() != nil {
				return *k.GetKind()
			}
		case interface{ GetKind() string }:
			return k.GetKind()
		}
		return "unknown"
	}
	count := func(kind, subresource, verb string) { apiWrites.WithLabelValues(kind, subresource, verb).Inc() }
	ww, ok := c.(client.WithWatch)
	if !ok {
		ww = noWatch{c}
	}
	return interceptor.NewClient(ww, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count(kind(obj), "", "create")
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			count(kind(obj), "", "update")
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			count(kind(obj), "", "patch")
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			count(applyKind(obj), "", "apply")
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count(kind(obj), "", "delete")
			return c.Delete(ctx, obj, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			count(kind(obj), "", "deletecollection")
			return c.DeleteAllOf(ctx, obj, opts...)
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			count(kind(obj), sub, "create")
			return c.SubResource(sub).Create(ctx, obj, subObj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			count(kind(obj), sub, "update")
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			count(kind(obj), sub, "patch")
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
		SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
			count(applyKind(obj), sub, "apply")
			return c.SubResource(sub).Apply(ctx, obj, opts...)
		},
	})
}

// noWatch lets a client without Watch (the manager's) go through the interceptor; the
// reconcilers never watch through their client.
type noWatch struct{ client.Client }

func (noWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, errors.New("watch is not supported through this client")
}

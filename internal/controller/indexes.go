package controller

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// Cache indexes, so that a reconcile finds a network's objects without scanning its
// namespace.
const (
	// indexOwnerNetwork indexes StatefulSets by the name of their controlling network.
	indexOwnerNetwork = ".metadata.controller"
	// indexPodNetwork indexes pods by the name of their network (the instance label).
	indexPodNetwork = "network"
	// indexSecret indexes networks by spec.secret.
	indexSecret = ".spec.secret"
)

func setupIndexes(ctx context.Context, mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &appsv1.StatefulSet{}, indexOwnerNetwork, func(o client.Object) []string {
		if name, ok := controllingNetwork(o); ok {
			return []string{name}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &corev1.Pod{}, indexPodNetwork, func(o client.Object) []string {
		if name := o.GetLabels()[render.LabelInstance]; name != "" {
			return []string{name}
		}
		return nil
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &bitcoinv1alpha1.BitcoinNetwork{}, indexSecret, func(o client.Object) []string {
		if s := o.(*bitcoinv1alpha1.BitcoinNetwork).Spec.Secret; s != "" {
			return []string{s}
		}
		return nil
	})
}

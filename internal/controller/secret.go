package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// secretKeys are the keys spec.secret must hold, those of a kubernetes.io/basic-auth
// Secret.
var secretKeys = []string{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey}

// problem is something the user has to fix: a condition reason and a message that says
// what to do.
type problem struct{ reason, message string }

// checkSecret returns a problem when spec.secret names a Secret that does not exist or
// lacks a key, and nil when there is nothing to report. Only key names are read: no
// credential reaches a message.
func (r *NetworkReconciler) checkSecret(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork) (*problem, error) {
	name := network.Spec.Secret
	if name == "" {
		return nil, nil
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: network.Namespace, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		return &problem{"SecretNotFound", fmt.Sprintf("Secret %q named by spec.secret does not exist in namespace %q: create it (type kubernetes.io/basic-auth, keys username and password)",
			name, network.Namespace)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read Secret %q: %w", name, err)
	}
	for _, key := range secretKeys {
		if len(secret.Data[key]) == 0 {
			return &problem{"SecretKeyMissing",
				fmt.Sprintf("Secret %q named by spec.secret has no key %q (or it is empty): add it", name, key)}, nil
		}
	}
	return nil, nil
}

// networksNamingSecret maps a Secret to the networks in its namespace whose spec.secret
// names it.
func (r *NetworkReconciler) networksNamingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var networks bitcoinv1alpha1.BitcoinNetworkList
	if err := r.List(ctx, &networks, client.InNamespace(secret.GetNamespace()),
		client.MatchingFields{indexSecret: secret.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list the networks that name a Secret", "secret", client.ObjectKeyFromObject(secret))
		return nil
	}
	requests := make([]reconcile.Request, 0, len(networks.Items))
	for _, n := range networks.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&n)})
	}
	return requests
}

package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// The keys of the Secret <name>-mining-key.
const (
	miningKeyWIF        = "wif"
	miningKeyAddress    = "address"
	miningKeyDescriptor = "descriptor"
)

// miningKeySecretName is the Secret the operator generates a network's mining key into.
func miningKeySecretName(network *bitcoinv1alpha1.BitcoinNetwork) string {
	return network.Name + "-mining-key"
}

// generatesMiningKey tells whether the network mines to a key the operator generates:
// it mines, and names no address of its own.
func generatesMiningKey(network *bitcoinv1alpha1.BitcoinNetwork) bool {
	return network.Spec.Mining != nil && network.Spec.Mining.Address == ""
}

// ensureMiningKey generates the network's mining key into a Secret the network owns,
// when it mines without spec.mining.address and the Secret does not exist yet. Like the
// credentials, the Secret never changes once it exists: coins mined to its address
// must stay spendable. A Secret of that name that the operator did not generate for
// the network is a problem for the user, never overwritten.
func (r *NetworkReconciler) ensureMiningKey(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, done *changes) (*problem, error) {
	if !generatesMiningKey(network) {
		return nil, nil
	}
	name := miningKeySecretName(network)
	existing := secretMetadata.DeepCopy()
	err := r.Get(ctx, keyOf(network, name), existing)
	switch {
	case err == nil && metav1.IsControlledBy(existing, network):
		return nil, nil
	case err == nil:
		return &problem{"MiningKeyConflict", fmt.Sprintf("Secret %q exists but was not generated for this network: delete it, or set spec.mining.address", name)}, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to read Secret %q: %w", name, err)
	}
	key, err := bitcoin.NewRegtestMiningKey()
	if err != nil {
		return nil, reconcile.TerminalError(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: network.Namespace,
			Labels: map[string]string{render.LabelManagedBy: render.ManagedBy, render.LabelInstance: network.Name},
		},
		Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{
			miningKeyWIF: key.WIF, miningKeyAddress: key.Address, miningKeyDescriptor: key.Descriptor,
		},
	}
	if err := controllerutil.SetControllerReference(network, secret, r.Scheme()); err != nil {
		return nil, reconcile.TerminalError(err)
	}
	if err := r.Create(ctx, secret, client.FieldOwner(fieldOwner)); err != nil {
		if apierrors.IsAlreadyExists(err) { // the cache was behind: the next reconcile looks again
			return nil, nil
		}
		return nil, fmt.Errorf("failed to create Secret %q: %w", name, err)
	}
	done.create(ctx, "Secret", name, "with a generated regtest mining key (blocks pay "+key.Address+")")
	return nil, nil
}

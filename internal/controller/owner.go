package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

const networkKind = "BitcoinNetwork"

// controllingNetwork returns the name of the BitcoinNetwork that controls obj, if one
// does.
func controllingNetwork(obj metav1.Object) (string, bool) {
	owner := metav1.GetControllerOf(obj)
	if owner == nil || owner.APIVersion != bitcoinv1alpha1.GroupVersion.String() || owner.Kind != networkKind {
		return "", false
	}
	return owner.Name, true
}

// controllerReference makes the network the controller of an object, so that the
// garbage collector deletes the object with the network and a foreground deletion
// waits for it (blockOwnerDeletion, which needs update on bitcoinnetworks/finalizers
// where the OwnerReferencesPermissionEnforcement admission plugin is on).
func controllerReference(n *bitcoinv1alpha1.BitcoinNetwork) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(bitcoinv1alpha1.GroupVersion.String()).
		WithKind(networkKind).
		WithName(n.Name).
		WithUID(n.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

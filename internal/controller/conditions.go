package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

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

// conditionsChanged tells whether any of conds differs from the network's.
func conditionsChanged(n *bitcoinv1alpha1.BitcoinNetwork, conds []metav1.Condition) bool {
	for _, c := range conds {
		if conditionChanged(n, c) {
			return true
		}
	}
	return false
}

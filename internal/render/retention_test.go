package render

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func TestRetentionPolicyDefaultsToRetainAndFollowsTheSpec(t *testing.T) {
	r := mustRenderer(t)
	for _, tc := range []struct {
		name                string
		spec                *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy
		whenDeleted, scaled appsv1.PersistentVolumeClaimRetentionPolicyType
	}{
		{"unset", nil, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType},
		{"empty", &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}, "Retain", "Retain"},
		{"delete on deletion", &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Delete"}, "Delete", "Retain"},
		{"delete on scale-down", &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: "Delete"}, "Retain", "Delete"},
		{"both", &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Delete", WhenScaled: "Delete"}, "Delete", "Delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := network("net", 1, bitcoinv1alpha1.Regtest)
			n.Spec.PersistentVolumeClaimRetentionPolicy = tc.spec
			objs, err := r.Render(n, Settings{})
			g := NewWithT(t)
			g.Expect(err).NotTo(HaveOccurred())
			p := objs.StatefulSet.Spec.PersistentVolumeClaimRetentionPolicy
			g.Expect(*p.WhenDeleted).To(Equal(tc.whenDeleted))
			g.Expect(*p.WhenScaled).To(Equal(tc.scaled))
		})
	}
}

func TestChartSchemaRefusesAnUnknownRetentionPolicy(t *testing.T) {
	n := network("net", 1, bitcoinv1alpha1.Regtest)
	n.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Keep"}
	_, err := mustRenderer(t).Render(n, Settings{})
	NewWithT(t).Expect(err).To(MatchError("the bitcoin-network chart's values schema refuses persistentVolumeClaimRetentionPolicy (spec.persistentVolumeClaimRetentionPolicy)"))
}

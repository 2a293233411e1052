package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestAPIServerRefusesBadStorageAndImages(t *testing.T) {
	ns := newNamespace(t)
	for i, tc := range []struct {
		name           string
		spec           map[string]any
		field, message string
	}{
		{"zero storage", map[string]any{"storage": "0"}, "spec.storage", "storage must be a positive quantity"},
		{"zero storage as a number", map[string]any{"storage": 0}, "spec.storage", "storage must be a positive quantity"},
		{"negative storage", map[string]any{"storage": "-1Gi"}, "spec.storage", "storage must be a positive quantity"},
		{"storage beyond the maximum", map[string]any{"storage": "2Ti"}, "spec.storage", "storage must be at most 1Ti"},
		{"storage far beyond", map[string]any{"storage": "1Pi"}, "spec.storage", "storage must be at most 1Ti"},
		{"storage that is no quantity", map[string]any{"storage": "lots"}, "spec.storage", "spec.storage"},
		{"image with a space", map[string]any{"image": "bitcoin/bitcoin:28.1 -rpcpassword=x"}, "spec.image", "image must be an image reference"},
		{"image with a newline", map[string]any{"image": "bitcoin\n"}, "spec.image", "image must be an image reference"},
		{"image with upper-case path", map[string]any{"image": "bitcoin/Bitcoin"}, "spec.image", "image must be an image reference"},
		{"image with an empty tag", map[string]any{"image": "bitcoin/bitcoin:"}, "spec.image", "image must be an image reference"},
		{"image with a scheme", map[string]any{"image": "https://example.com/bitcoin"}, "spec.image", "image must be an image reference"},
		{"image with a short digest", map[string]any{"image": "bitcoin@sha256:abc"}, "spec.image", "image must be an image reference"},
		{"image too long", map[string]any{"image": "b/" + strings.Repeat("a", 511)}, "spec.image", "Too long: may not be more than 512"},
		{"unknown retention", map[string]any{"persistentVolumeClaimRetentionPolicy": map[string]any{"whenDeleted": "Keep"}},
			"spec.persistentVolumeClaimRetentionPolicy", "spec.persistentVolumeClaimRetentionPolicy.whenDeleted must be Retain or Delete"},
		{"unknown scale retention", map[string]any{"persistentVolumeClaimRetentionPolicy": map[string]any{"whenScaled": "delete"}},
			"spec.persistentVolumeClaimRetentionPolicy", "spec.persistentVolumeClaimRetentionPolicy.whenScaled must be Retain or Delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec["nodes"] = 0
			err := k8s.Create(context.Background(), unstructuredNetwork(ns, fmt.Sprintf("bad-%d", i), tc.spec))
			g := NewWithT(t)
			g.Expect(err).To(MatchError(ContainSubstring(tc.field+": ")), "the error names the field")
			g.Expect(err).To(MatchError(ContainSubstring(tc.message)))
		})
	}
}

func TestAPIServerAcceptsGoodStorageAndImages(t *testing.T) {
	ns := newNamespace(t)
	for i, spec := range []map[string]any{
		{"storage": "1Ti"},
		{"storage": "1"},
		{"storage": 5368709120},
		{"storage": "500M"},
		{"image": "bitcoin/bitcoin:28.1"},
		{"image": "bitcoin"},
		{"image": "registry.example.com:5000/team/bitcoin-core_x/node:v28.1-rc.1"},
		{"image": "127.0.0.1:5000/bitcoin@" + digest},
		{"image": "localhost/bitcoin:28.1@" + digest},
		{"image": "b/" + strings.Repeat("a", 510)},
		{"persistentVolumeClaimRetentionPolicy": map[string]any{"whenDeleted": "Delete", "whenScaled": "Delete"}},
		{"persistentVolumeClaimRetentionPolicy": map[string]any{"whenScaled": "Delete"}},
	} {
		spec["nodes"] = 0
		n := unstructuredNetwork(ns, fmt.Sprintf("good-%d", i), spec)
		NewWithT(t).Expect(k8s.Create(context.Background(), n)).To(Succeed(), "%v", spec)
	}
}

// Retain is Kubernetes' own default; a network that says nothing gets it, visibly.
func TestRetentionPolicyDefaultsToRetainAndReachesTheStatefulSet(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "retain", 1)
	retain := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Retain", WhenScaled: "Retain"}
	g.Expect(*getNetwork(g, n).Spec.PersistentVolumeClaimRetentionPolicy).To(Equal(retain))
	g.Eventually(func(g Gomega) {
		g.Expect(*statefulSet(g, n).Spec.PersistentVolumeClaimRetentionPolicy).To(Equal(retain))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the policy may change, and the StatefulSet follows")
	patch := `{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete","whenScaled":"Delete"}}}`
	g.Expect(k8s.Patch(ctx, n.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	deleteAll := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Delete", WhenScaled: "Delete"}
	g.Eventually(func(g Gomega) {
		g.Expect(*statefulSet(g, n).Spec.PersistentVolumeClaimRetentionPolicy).To(Equal(deleteAll))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "one field alone keeps Retain for the other")
	patch = `{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":null}}}`
	g.Expect(k8s.Patch(ctx, n.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	g.Eventually(func(g Gomega) {
		p := *statefulSet(g, n).Spec.PersistentVolumeClaimRetentionPolicy
		g.Expect(p).To(Equal(appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Retain", WhenScaled: "Delete"}))
	}, timeout, interval).Should(Succeed())
}

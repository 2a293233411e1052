package controller

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

func TestAPIServerAdmitsAThousandNodes(t *testing.T) {
	n := unstructuredNetwork(newNamespace(t), "thousand", map[string]any{"nodes": 1000})
	NewWithT(t).Expect(k8s.Create(context.Background(), n)).To(Succeed())
}

func TestPodManagementPolicyDefaultsAndRefusesUnknownValues(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	ns := newNamespace(t)
	n := testkit.CreateNetwork(t, k8s, ns, "ordered", 0)
	g.Expect(k8s.Get(ctx, keyOf(n, n.Name), n)).To(Succeed())
	g.Expect(n.Spec.PodManagementPolicy).To(Equal(appsv1.OrderedReadyPodManagement))

	err := k8s.Create(ctx, unstructuredNetwork(ns, "allatonce", map[string]any{"nodes": 1, "podManagementPolicy": "AllAtOnce"}))
	g.Expect(err).To(MatchError(ContainSubstring(`spec.podManagementPolicy: Unsupported value: "AllAtOnce"`)))
}

// podManagementPolicy cannot change, as the StatefulSet's cannot: neither way, nor by
// removing it, which the default would turn into a change.
func TestAPIServerRefusesChangesOfPodManagementPolicy(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, tc := range []struct {
		name, created, patch string
	}{
		{"defaulted to OrderedReady, set to Parallel", "", `"Parallel"`},
		{"OrderedReady to Parallel", "OrderedReady", `"Parallel"`},
		{"Parallel to OrderedReady", "Parallel", `"OrderedReady"`},
		{"Parallel removed", "Parallel", `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			spec := map[string]any{"nodes": 0}
			if tc.created != "" {
				spec["podManagementPolicy"] = tc.created
			}
			n := unstructuredNetwork(ns, "", spec)
			n.SetGenerateName("immutable-")
			g.Expect(k8s.Create(ctx, n)).To(Succeed())
			patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"podManagementPolicy":`+tc.patch+`}}`))
			err := k8s.Patch(ctx, n, patch)
			g.Expect(err).To(MatchError(ContainSubstring("spec.podManagementPolicy: Invalid value")))
			g.Expect(err).To(MatchError(ContainSubstring("spec.podManagementPolicy is immutable")))
		})
	}

	t.Run("the same value again", func(t *testing.T) {
		g := NewWithT(t)
		n := unstructuredNetwork(ns, "same", map[string]any{"nodes": 0})
		g.Expect(k8s.Create(ctx, n)).To(Succeed())
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"podManagementPolicy":"OrderedReady"}}`))
		g.Expect(k8s.Patch(ctx, n, patch)).To(Succeed())
	})
}

func TestParallelReachesTheStatefulSet(t *testing.T) {
	g := NewWithT(t)
	n := testkit.Network(newNamespace(t), "parallel", 2)
	n.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	g.Expect(k8s.Create(context.Background(), n)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(statefulSet(g, n).Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
	}, timeout, interval).Should(Succeed())
	g.Expect(getNetwork(g, n).Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
}

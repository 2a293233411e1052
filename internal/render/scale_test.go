package render

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func TestPodManagementPolicyDefaultsToOrderedReadyAndFollowsTheSpec(t *testing.T) {
	r := mustRenderer(t)
	for spec, want := range map[appsv1.PodManagementPolicyType]appsv1.PodManagementPolicyType{
		"":                               appsv1.OrderedReadyPodManagement,
		appsv1.OrderedReadyPodManagement: appsv1.OrderedReadyPodManagement,
		appsv1.ParallelPodManagement:     appsv1.ParallelPodManagement,
	} {
		t.Run(string(want)+" from "+string(spec), func(t *testing.T) {
			n := network("net", 3, bitcoinv1alpha1.Regtest)
			n.Spec.PodManagementPolicy = spec
			objs, err := r.Render(n, Settings{})
			g := NewWithT(t)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(*objs.StatefulSet.Spec.PodManagementPolicy).To(Equal(want))
		})
	}
}

func TestHelmTemplateTakesPodManagementPolicy(t *testing.T) {
	g := NewWithT(t)
	objs, err := Decode(helmTemplate(t, "standalone", "default", map[string]any{"nodes": 2, "podManagementPolicy": "Parallel"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*objs.StatefulSet.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
}

func TestChartSchemaRefusesAnUnknownPodManagementPolicy(t *testing.T) {
	n := network("net", 1, bitcoinv1alpha1.Regtest)
	n.Spec.PodManagementPolicy = "AllAtOnce"
	_, err := mustRenderer(t).Render(n, Settings{})
	NewWithT(t).Expect(err).To(MatchError("the bitcoin-network chart's values schema refuses podManagementPolicy (spec.podManagementPolicy)"))
}

// The largest network the API admits renders as any other: one StatefulSet of 1000
// replicas, whose size does not grow with them.
func TestTheLargestNetworkRenders(t *testing.T) {
	g := NewWithT(t)
	n := network("large", 1000, bitcoinv1alpha1.Regtest)
	n.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	objs := mustRender(t, n)
	g.Expect(*objs.StatefulSet.Spec.Replicas).To(BeEquivalentTo(1000))
	g.Expect(*objs.StatefulSet.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
}

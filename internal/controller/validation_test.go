package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// unstructuredNetwork builds a network as a user's YAML would, so that fields the Go
// types would omit (an empty image) reach the API server.
func unstructuredNetwork(namespace, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": bitcoinv1alpha1.GroupVersion.String(),
		"kind":       "BitcoinNetwork",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}}
}

func TestAPIServerRejectsBadInput(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range []struct {
		name, network string
		spec          map[string]any
		message       string
	}{
		{"negative nodes", "neg", map[string]any{"nodes": -1}, "spec.nodes: Invalid value: -1: spec.nodes in body should be greater than or equal to 0"},
		{"too many nodes", "many", map[string]any{"nodes": 101}, "spec.nodes: Invalid value: 101: spec.nodes in body should be less than or equal to 100"},
		{"nodes missing", "nonodes", map[string]any{}, "spec.nodes: Required value"},
		{"unknown chain", "main", map[string]any{"nodes": 1, "chain": "mainnet"}, `spec.chain: Unsupported value: "mainnet"`},
		{"empty image", "noimage", map[string]any{"nodes": 1, "image": ""}, "spec.image: Invalid value: \"\": spec.image in body should be at least 1 chars long"},
		{"secret not a DNS-1123 subdomain", "badsecret", map[string]any{"nodes": 1, "secret": "Bad_Secret"}, "spec.secret: Invalid value: \"Bad_Secret\": spec.secret in body should match"},
		{"name not a DNS-1035 label", "1st-network", map[string]any{"nodes": 1}, "metadata.name must be a DNS-1035 label"},
		{"name with a dot", "a.b", map[string]any{"nodes": 1}, "metadata.name must be a DNS-1035 label"},
		{"name too long", strings.Repeat("n", 49), map[string]any{"nodes": 1}, "metadata.name must be at most 48 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := k8s.Create(context.Background(), unstructuredNetwork(ns, tc.network, tc.spec))
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tc.message)))
		})
	}

	t.Run("longest valid name", func(t *testing.T) {
		n := unstructuredNetwork(ns, strings.Repeat("n", 48), map[string]any{"nodes": 0})
		NewWithT(t).Expect(k8s.Create(context.Background(), n)).To(Succeed())
	})
}

func TestAPIServerRejectsChangesOfImmutableFields(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	n := unstructuredNetwork(newNamespace(t), "immutable", map[string]any{"nodes": 1, "chain": "signet", "storage": "10Gi"})
	g.Expect(k8s.Create(ctx, n)).To(Succeed())

	for field, value := range map[string]string{"chain": "testnet4", "storage": "20Gi"} {
		patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{%q:%q}}`, field, value)))
		err := k8s.Patch(ctx, n, patch)
		g.Expect(err).To(MatchError(ContainSubstring("spec." + field + ": Invalid value")))
		g.Expect(err).To(MatchError(ContainSubstring(field + " is immutable")))
	}
}

func TestAPIServerAppliesDefaults(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "defaults", 1)
	g.Expect(k8s.Get(ctx, keyOf(n, n.Name), n)).To(Succeed())
	g.Expect(n.Spec.Chain).To(Equal(bitcoinv1alpha1.Regtest))
	// No default for the image: the operator resolves it (RELATED_IMAGE_BITCOIN_CORE).
	g.Expect(n.Spec.Image).To(BeEmpty())
	g.Expect(n.Spec.Storage.String()).To(Equal("1Gi"))
}

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
		{"too many nodes", "many", map[string]any{"nodes": 1001}, "spec.nodes: Invalid value: 1001: spec.nodes in body should be less than or equal to 1000"},
		{"nodes missing", "nonodes", map[string]any{}, "spec.nodes: Required value"},
		{"unknown chain", "main", map[string]any{"nodes": 1, "chain": "mainnet"}, `spec.chain: Unsupported value: "mainnet"`},
		{"empty image", "noimage", map[string]any{"nodes": 1, "image": ""}, "spec.image: Invalid value: \"\": spec.image in body should be at least 1 chars long"},
		{"secret not a DNS-1123 subdomain", "badsecret", map[string]any{"nodes": 1, "secret": "Bad_Secret"}, "spec.secret: Invalid value: \"Bad_Secret\": spec.secret in body should match"},
		{"name not a DNS-1035 label", "1st-network", map[string]any{"nodes": 1}, "metadata.name must be a DNS-1035 label"},
		{"name with a dot", "a.b", map[string]any{"nodes": 1}, "metadata.name must be a DNS-1035 label"},
		{"name too long", strings.Repeat("n", 49), map[string]any{"nodes": 1}, "metadata.name must be at most 48 characters"},
		{"mining on signet", "signetmining", map[string]any{"nodes": 1, "chain": "signet", "mining": map[string]any{"minHeight": 1}}, "spec.mining and spec.partitions are for regtest only"},
		{"partitions on testnet4", "t4split", map[string]any{"nodes": 2, "chain": "testnet4", "partitions": []any{[]any{0}, []any{1}}}, "spec.mining and spec.partitions are for regtest only"},
		{"interval under a second", "fast", map[string]any{"nodes": 1, "mining": map[string]any{"interval": "500ms"}}, "spec.mining.interval: Invalid value: \"500ms\": spec.mining.interval must be at least 1s"},
		{"negative minHeight", "negheight", map[string]any{"nodes": 1, "mining": map[string]any{"minHeight": -1}}, "spec.mining.minHeight: Invalid value: -1"},
		{"negative mining node", "negminer", map[string]any{"nodes": 1, "mining": map[string]any{"nodes": []any{-1}}}, "spec.mining.nodes[0]: Invalid value: -1"},
		{"mining node twice", "twominers", map[string]any{"nodes": 2, "mining": map[string]any{"nodes": []any{1, 1}}}, "spec.mining.nodes[1]: Duplicate value: 1"},
		{"mainnet address", "mainaddr", map[string]any{"nodes": 1, "mining": map[string]any{"address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}}, "spec.mining.address: Invalid value: \"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\": spec.mining.address must be a regtest address"},
		{"negative ordinal in a partition", "negsplit", map[string]any{"nodes": 2, "partitions": []any{[]any{0}, []any{-1}}}, "spec.partitions[1][0]: Invalid value: -1"},
		{"ordinal twice in a group", "dupgroup", map[string]any{"nodes": 2, "partitions": []any{[]any{0, 0}}}, "spec.partitions[0][1]: Duplicate value: 0"},
		{"ordinal in two groups", "dupsplit", map[string]any{"nodes": 3, "partitions": []any{[]any{0, 1}, []any{1, 2}}}, "spec.partitions: Invalid value: spec.partitions must list each ordinal at most once"},
		{"too many groups", "groups", map[string]any{"nodes": 9, "partitions": []any{[]any{0}, []any{1}, []any{2}, []any{3}, []any{4}, []any{5}, []any{6}, []any{7}, []any{8}}}, "spec.partitions: Too many: 9: must have at most 8 items"},
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
	g.Expect(n.Spec.Mining).To(BeNil(), "no mining unless asked for")

	mining := unstructuredNetwork(n.Namespace, "mining-defaults", map[string]any{"nodes": 1, "mining": map[string]any{"minHeight": 101}})
	g.Expect(k8s.Create(ctx, mining)).To(Succeed())
	g.Expect(k8s.Get(ctx, keyOf(n, "mining-defaults"), n)).To(Succeed())
	g.Expect(n.Spec.Mining.Nodes).To(Equal([]bitcoinv1alpha1.NodeOrdinal{0}), "node 0 mines by default")
}

// The largest spec the API server admits, every list at its maxItems, passes the CEL
// rules: the CRD was admitted with its cost estimate, and this shows the rules hold
// at that size.
func TestAPIServerAdmitsLargestChainControl(t *testing.T) {
	groups := make([]any, 8)
	miners := make([]any, 100)
	for i := range groups {
		group := make([]any, 12)
		for j := range group {
			group[j] = i*12 + j
		}
		groups[i] = group
	}
	for i := range miners {
		miners[i] = i
	}
	n := unstructuredNetwork(newNamespace(t), "largest", map[string]any{
		"nodes":      100,
		"partitions": groups,
		"mining":     map[string]any{"minHeight": 101, "interval": "1s", "nodes": miners, "address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"},
	})
	NewWithT(t).Expect(k8s.Create(context.Background(), n)).To(Succeed())
}

package render

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// testRPCAuth is an rpcauth entry for alice; its password is not in it.
const testRPCAuth = "alice:cb77f0957de88ff388cf817ddbc7273$c9ce7cb2de2ad5aadae1449ad1e62baa38d98fced30a7cd2eae656cab574b678"

// operatorPods is the RPC client the operator admits: its own pods.
var operatorPods = []map[string]any{{
	"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "bitcoin-operator-system"}},
	"podSelector":       map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "bitcoin-operator"}},
}}

func TestRenderPassesTheRPCAuthEntryAsAnArgument(t *testing.T) {
	g := NewWithT(t)
	objs, err := mustRenderer(t).Render(network("net", 1, bitcoinv1alpha1.Regtest), Settings{RPCAuth: testRPCAuth, RPCAllowIP: "10.1.0.0/16"})
	g.Expect(err).NotTo(HaveOccurred())
	c := objs.StatefulSet.Spec.Template.Spec.Containers[0]
	g.Expect(c.Args).To(ContainElements("-rpcauth="+testRPCAuth, "-rpcallowip=10.1.0.0/16"))
	g.Expect(c.Env).To(BeEmpty())

	without := bitcoind(mustRender(t, network("net", 1, bitcoinv1alpha1.Regtest)).StatefulSet)
	for _, arg := range without.Args {
		g.Expect(arg).NotTo(HavePrefix("-rpcauth"), "no credentials, no rpcauth entry")
	}
}

func TestRenderRefusesAnRPCAuthEntryThatIsNotOne(t *testing.T) {
	// A password passed where the entry belongs must never reach a pod's arguments.
	_, err := mustRenderer(t).Render(network("net", 1, ""), Settings{RPCAuth: "alice:hunter2"})
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("rpcAuth")))
}

func TestNetworkPolicyAdmitsP2PFromTheNetworkAndRPCFromTheOperator(t *testing.T) {
	g := NewWithT(t)
	objs, err := mustRenderer(t).Render(network("net", 3, bitcoinv1alpha1.Signet), Settings{RPCFrom: operatorPods})
	g.Expect(err).NotTo(HaveOccurred())
	np := objs.NetworkPolicy
	g.Expect(np).NotTo(BeNil())
	g.Expect(*np.Name).To(Equal("net-netpol"))
	g.Expect(np.Spec.PodSelector.MatchLabels).To(Equal(objs.StatefulSet.Spec.Selector.MatchLabels))
	g.Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress))
	g.Expect(np.Spec.Ingress).To(HaveLen(2))

	p2p, rpc := np.Spec.Ingress[0], np.Spec.Ingress[1]
	g.Expect(*p2p.Ports[0].Port).To(Equal(intstr.FromInt32(38333)))
	g.Expect(p2p.From).To(HaveLen(1))
	g.Expect(p2p.From[0].PodSelector.MatchLabels).To(Equal(objs.StatefulSet.Spec.Selector.MatchLabels))
	g.Expect(p2p.From[0].NamespaceSelector).To(BeNil(), "the network's own namespace only")

	g.Expect(*rpc.Ports[0].Port).To(Equal(intstr.FromInt32(38332)))
	g.Expect(rpc.From).To(HaveLen(1))
	g.Expect(rpc.From[0].PodSelector.MatchLabels).To(HaveKeyWithValue("app.kubernetes.io/name", "bitcoin-operator"))
	g.Expect(rpc.From[0].NamespaceSelector.MatchLabels).To(HaveKeyWithValue("kubernetes.io/metadata.name", "bitcoin-operator-system"))
}

// An ingress rule without "from" admits every source, so no rpcFrom must mean no rule.
func TestNetworkPolicyWithoutRPCClientsAdmitsNoRPC(t *testing.T) {
	np := mustRender(t, network("net", 3, bitcoinv1alpha1.Regtest)).NetworkPolicy
	g := NewWithT(t)
	g.Expect(np.Spec.Ingress).To(HaveLen(1))
	g.Expect(*np.Spec.Ingress[0].Ports[0].Port).To(Equal(intstr.FromInt32(18444)))
}

func TestPortsComeFromTheChart(t *testing.T) {
	r := mustRenderer(t)
	for chain, want := range map[bitcoinv1alpha1.Chain]Ports{
		bitcoinv1alpha1.Regtest:  {RPC: 18443, P2P: 18444},
		bitcoinv1alpha1.Signet:   {RPC: 38332, P2P: 38333},
		bitcoinv1alpha1.Testnet4: {RPC: 48332, P2P: 48333},
	} {
		got, err := r.Ports(chain)
		if err != nil || got != want {
			t.Errorf("Ports(%s) = %+v, %v; want %+v", chain, got, err, want)
		}
	}
	if _, err := r.Ports("mainnet"); err == nil || !strings.Contains(err.Error(), "chain") {
		t.Errorf("Ports(mainnet) err = %v, want one about the chain", err)
	}
}

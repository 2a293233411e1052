package controller

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

func TestNetworkMemoryIsBoundToTheNetworksUID(t *testing.T) {
	g := NewWithT(t)
	var m networkMemory[string]
	m.store(testNetwork("a", "uid-1"), "salted")
	v, ok := m.load(testNetwork("a", "uid-1"))
	g.Expect(ok).To(BeTrue())
	g.Expect(v).To(Equal("salted"))

	_, ok = m.load(testNetwork("a", "uid-2"))
	g.Expect(ok).To(BeFalse(), "a network recreated under the same name inherits nothing")
	g.Expect(m.update(testNetwork("a", "uid-2"), func(old string, ok bool) string {
		g.Expect(ok).To(BeFalse())
		return old + "fresh"
	})).To(Equal("fresh"))

	_, ok = m.forget(types.NamespacedName{Namespace: "ns", Name: "a"})
	g.Expect(ok).To(BeTrue())
	g.Expect(m.len()).To(BeZero())
}

// A network deleted between two reconciles (no finalizer holds it, so no reconcile
// sees its deletion timestamp) is forgotten when a reconcile finds it gone.
func TestReconcilersForgetANetworkThatIsGone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	gone := testNetwork("gone", "uid-gone")
	gone.Namespace = ns
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "gone"}}
	obs := newObservations()

	network := &NetworkReconciler{Client: k8s, Observations: obs, status: newStatusWriter(k8s, networkStatusOwner, &statusPacer{})}
	network.rpcAuths.store(gone, bitcoin.RPCAuth("user:salt$hmac"))
	network.status.recent.store(gone, recentWrite{})
	_, err := network.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(network.rpcAuths.len()).To(BeZero())
	g.Expect(network.status.recent.len()).To(BeZero())

	status := &StatusReconciler{Client: k8s, Observations: obs, status: newStatusWriter(k8s, nodeStatusOwner, &statusPacer{})}
	status.status.recent.store(gone, recentWrite{})
	_, err = status.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status.status.recent.len()).To(BeZero())

	peers := &PeerReconciler{Client: k8s, Observations: obs, rounds: newPeerRounds()}
	peers.rounds.of(gone)
	peers.creds.store(gone, &credentials{})
	obs.setAuthFailure(gone, "refused")
	_, err = peers.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(peers.rounds.states.len() + peers.creds.len() + obs.networks.len()).To(BeZero())
}

// len is how many networks are remembered (for the tests).
func (m *networkMemory[T]) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

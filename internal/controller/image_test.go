package controller

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

func TestNodeImage(t *testing.T) {
	for _, tc := range []struct {
		name, spec, status, def, want string
	}{
		{"a new network takes the operator's default", "", "", "mirror/bitcoin:28.1", "mirror/bitcoin:28.1"},
		{"spec.image wins", "my/bitcoin:29", "bitcoin/bitcoin:28.1", "mirror/bitcoin:28.1", "my/bitcoin:29"},
		{"a recorded image outlives a new default", "", "bitcoin/bitcoin:28.1", "bitcoin/bitcoin:29.0", "bitcoin/bitcoin:28.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &bitcoinv1alpha1.BitcoinNetwork{}
			n.Spec.Image, n.Status.Image = tc.spec, tc.status
			NewWithT(t).Expect(nodeImage(n, tc.def)).To(Equal(tc.want))
		})
	}
}

// TestNetworkRecordsItsImage: a network without spec.image runs the operator's default
// and records it in status.image.
func TestNetworkRecordsItsImage(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "image", 1)
	g.Eventually(func(g Gomega) {
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(context.Background(), keyOf(n, n.Name), cur)).To(Succeed())
		g.Expect(cur.Spec.Image).To(BeEmpty())
		g.Expect(cur.Status.Image).To(Equal(bitcoinv1alpha1.DefaultImage))
		g.Expect(statefulSet(g, n).Spec.Template.Spec.Containers[0].Image).To(Equal(bitcoinv1alpha1.DefaultImage))
	}, timeout, interval).Should(Succeed())
}

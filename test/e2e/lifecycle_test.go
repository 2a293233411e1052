//go:build e2e

package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// The seed's promise: "the node list populates as the pods are brought up and the
// nodes turn Ready one by one". Also proves that pods are admitted in a namespace
// enforcing the restricted Pod Security Standard.
func TestNodesTurnReadyOneByOne(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()

	watcher, err := client.NewWithWatch(lc.Config, client.Options{Scheme: controller.NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := watcher.Watch(ctx, &bitcoinv1alpha1.BitcoinNetworkList{}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred())
	defer w.Stop()
	testkit.CreateNetwork(t, k8s, ns, "lifecycle", 3)

	// Record from the watch the order in which entries turn ready. One status write
	// may carry two changes; entries within it come in ordinal order.
	var readyOrder []int32
	seen := map[int32]bool{}
	for len(readyOrder) < 3 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the watch closed; nodes ready so far: %v", readyOrder)
			}
			g.Expect(ev.Type).NotTo(Equal(watch.Error), "watch failed: %v", ev.Object)
			n, ok := ev.Object.(*bitcoinv1alpha1.BitcoinNetwork)
			if !ok {
				continue
			}
			for _, node := range n.Status.Nodes {
				if node.Ready && !seen[node.Ordinal] {
					seen[node.Ordinal] = true
					readyOrder = append(readyOrder, node.Ordinal)
					t.Logf("%s node %d ready: %s (%s)", time.Now().Format(time.StampMilli), node.Ordinal, node.IP, node.DNSName)
				}
			}
		case <-ctx.Done():
			t.Fatalf("nodes ready so far: %v", readyOrder)
		}
	}
	g.Expect(readyOrder).To(Equal([]int32{0, 1, 2}), "a higher ordinal turned ready before a lower one")
	expectConverged(g, &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: objectMeta(ns, "lifecycle")}, 3)
}

func TestScaling(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	n := testkit.CreateNetwork(t, k8s, ns, "scaling", 3)
	expectConverged(g, n, 3)

	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.Nodes = 5
	g.Expect(k8s.Patch(context.Background(), n, patch)).To(Succeed())
	expectConverged(g, n, 5)

	kubectl(t, "scale", "-n", ns, "btcnet/scaling", "--replicas=2")
	expectConverged(g, n, 2)
	g.Expect(ordinals(g, n)).To(Equal([]int32{0, 1}))
}

func ordinals(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) []int32 {
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
	var out []int32
	for _, node := range cur.Status.Nodes {
		out = append(out, node.Ordinal)
	}
	slices.Sort(out)
	return out
}

// Two networks of the same name in two namespaces live apart.
func TestSameNameInTwoNamespaces(t *testing.T) {
	g := NewWithT(t)
	a, b := testkit.CreateNetwork(t, k8s, newNamespace(t), "twin", 2), testkit.CreateNetwork(t, k8s, newNamespace(t), "twin", 3)
	expectConverged(g, a, 2)
	expectConverged(g, b, 3)

	g.Expect(k8s.Delete(context.Background(), a)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(childrenOf(g, a.Namespace, "twin").empty()).To(BeTrue()) }, convergeTimeout, interval).Should(Succeed())
	expectConverged(g, b, 3)
}

package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// etcdRequestLimit is etcd's default --max-request-bytes: no object may be larger.
const etcdRequestLimit = 1572864

// The status of 1,000 nodes fits in one object with room to spare, at its largest:
// the longest names the API admits, IPv6 addresses, Core's longest user agent, and
// every count set. The status reconciler's own apply writes it, so its managedFields
// entry, which lists every entry's key, counts too. This is what bounds spec.nodes
// at 1,000: at 1,500 such entries the object would pass etcd's limit.
func TestStatusOfAThousandNodesFitsInAnObject(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "s" + strings.Repeat("x", 62)}}
	g.Expect(k8s.Create(ctx, ns)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, ns) })
	// No StatefulSet or pods: the status reconciler writes nothing of its own, and
	// the entries below stay as written. 0 nodes keeps the other reconcilers idle too.
	n := testkit.CreateNetwork(t, k8s, ns.Name, strings.Repeat("n", 48), 0)

	nodes := make([]bitcoinv1alpha1.BitcoinNetworkNode, scaleNodes)
	for i := range nodes {
		pod := fmt.Sprintf("%s-sts-%d", n.Name, i)
		nodes[i] = bitcoinv1alpha1.BitcoinNetworkNode{
			Ordinal: int32(i), Ready: true,
			IP:       fmt.Sprintf("fd00:1234:5678:9abc:def0:1234:5678:%04x", i),
			NodeName: pod, DNSName: fmt.Sprintf("%s.%s-svc.%s.svc", pod, n.Name, ns.Name),
			Peers: ptr.To[int32](125), Blocks: ptr.To[int64](4_000_000), BestBlockHash: strings.Repeat("f", blockHashLength),
			Subversion: "/" + strings.Repeat("u", maxSubversion-2) + "/", InboundPeers: ptr.To[int32](117),
			OutboundPeers: ptr.To[int32](8), Reorgs: 1_000_000,
		}
	}
	status := nodeStatus{Replicas: scaleNodes, ReadyNodes: scaleNodes, Selector: "app.kubernetes.io/instance=" + n.Name + ",app.kubernetes.io/name=bitcoin-network",
		Nodes: nodes, Conditions: []metav1.Condition{}}
	g.Expect(applyStatus(ctx, k8s, n, nodeStatusOwner, status)).To(Succeed())

	live := getNetwork(g, n)
	g.Expect(live.Status.Nodes).To(HaveLen(scaleNodes))
	object, err := json.Marshal(live)
	g.Expect(err).NotTo(HaveOccurred())
	statusOnly, err := json.Marshal(live.Status)
	g.Expect(err).NotTo(HaveOccurred())
	fmt.Printf("status of %d nodes at their largest: %d KiB; the object with its managedFields: %d KiB (etcd's limit: %d KiB)\n",
		scaleNodes, len(statusOnly)/1024, len(object)/1024, etcdRequestLimit/1024)
	// The write above would have failed beyond etcd's limit; this says by how much it
	// is within it (about a third is left for the spec, metadata and conditions).
	g.Expect(len(object)).To(BeNumerically("<", etcdRequestLimit*2/3))
}

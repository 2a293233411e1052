//go:build nodes

// Package nodes proves peer wiring on real Bitcoin nodes: the operator runs on the
// local control plane (test/cluster) as in test/e2e, and a Fleet (test/fleet) runs a
// btcd on each pod's IP (test/btcd), so the operator's addnode calls form real P2P
// connections and real blocks travel over them. btcd stands in for bitcoind, which
// cannot be had here; its proxy answers RPC as Bitcoin Core.
package nodes

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
	"github.com/bitcoinops/bitcoin-operator/test/btcd"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// Named timeouts. The operator asks settled networks every peerPeriod; btcd retries
// added nodes within seconds.
const (
	peerPeriod      = 5 * time.Second
	convergeTimeout = 2 * time.Minute
	interval        = 250 * time.Millisecond
)

func TestRealNodes(t *testing.T) {
	g := NewWithT(t)
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	ctx := context.Background()
	start := time.Now()
	lc, k8s, operator, btcdBinary := startPlane(t, os.Stderr, "--zap-log-level=debug", fmt.Sprintf("--peer-period=%s", peerPeriod))
	t.Logf("control plane, operator and btcd ready after %.1f s", time.Since(start).Seconds())

	ns := testkit.CreateNamespace(t, k8s, "nodes")
	network := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "real", Namespace: ns},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 3},
	}
	g.Expect(k8s.Create(ctx, network)).To(Succeed())
	fleetLog := &syncBuffer{}
	nodes, err := fleet.Start(ctx, fleet.Options[*btcd.Node]{
		Config: lc.Config, Namespace: ns, Network: network.Name,
		Start: fleet.Btcd(btcdBinary, lc.Dir), Log: fleetLog,
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer nodes.Stop()
	defer func() {
		if t.Failed() {
			dump(t, lc, operator, nodes, fleetLog.String())
		}
	}()

	start = time.Now()
	var pods []*btcd.Node
	g.Eventually(func(g Gomega) {
		running := nodes.Nodes()
		g.Expect(running).To(HaveLen(3))
		pods = nil
		for i := range 3 {
			n, ok := running[fmt.Sprintf("real-sts-%d", i)]
			g.Expect(ok).To(BeTrue(), "the node of pod real-sts-%d", i)
			pods = append(pods, n)
		}
	}, convergeTimeout, interval).Should(Succeed())
	for _, n := range pods {
		readyCtx, cancel := context.WithTimeout(ctx, convergeTimeout)
		g.Expect(n.WaitReady(readyCtx)).To(Succeed())
		cancel()
	}
	t.Logf("a btcd on each pod IP after %.1f s", time.Since(start).Seconds())

	// Real P2P connections, seen by btcd itself: each node reaches both others.
	g.Eventually(func(g Gomega) {
		for i, n := range pods {
			g.Expect(linkedPeers(g, n, pods)).To(HaveLen(2), "node %d's connections", i)
		}
		expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionConnected)
	}, convergeTimeout, interval).Should(Succeed())
	t.Logf("the operator wired a full P2P mesh, network Connected, after %.1f s", time.Since(start).Seconds())

	// Blocks mined on one node reach every node, and the network says so.
	hashes, err := pods[0].Generate(ctx, 3)
	g.Expect(err).NotTo(HaveOccurred())
	tip := hashes[len(hashes)-1]
	start = time.Now()
	g.Eventually(func(g Gomega) {
		for i, n := range pods {
			g.Expect(n.BestBlockHash(ctx)).To(Equal(tip), "node %d's tip", i)
		}
		cur := expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionSynced)
		g.Expect(cur.Status.Nodes).To(HaveLen(3))
		for _, node := range cur.Status.Nodes {
			g.Expect(node.Blocks).To(HaveValue(BeEquivalentTo(3)), "status.nodes[%d].blocks", node.Ordinal)
			g.Expect(node.Peers).To(HaveValue(BeNumerically(">=", 2)), "status.nodes[%d].peers", node.Ordinal)
		}
	}, convergeTimeout, interval).Should(Succeed())
	t.Logf("3 blocks mined on node 0 reached every node, network Synced, after %.1f s", time.Since(start).Seconds())

	// A restarted btcd has lost its added nodes, as a restarted bitcoind has; the pod
	// does not restart, so only the operator's periodic look can notice. The proxy's
	// list starts empty with the restart: whatever it holds afterwards, the operator
	// added again.
	restarted := pods[1]
	restarted.Kill()
	g.Expect(restarted.Restart()).To(Succeed())
	start = time.Now()
	var want []string
	for i, n := range pods {
		if i != 1 {
			want = append(want, n.P2PAddr())
		}
	}
	g.Eventually(func(g Gomega) {
		added, err := restarted.AddedNodes(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(added).To(ConsistOf(want))
		g.Expect(linkedPeers(g, restarted, pods)).To(HaveLen(2))
		g.Expect(restarted.BestBlockHash(ctx)).To(Equal(tip))
		expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionSynced)
	}, convergeTimeout, interval).Should(Succeed())
	t.Logf("the operator restored the restarted node's added nodes after %.1f s", time.Since(start).Seconds())

	// The operator worked through RPC, not around it: no credential in its log.
	creds := networkCredentials(g, k8s, network)
	log, err := os.ReadFile(operator.LogPath)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(log)).NotTo(ContainSubstring(creds.Password))

	splitMineAndHeal(t, lc, k8s, ns, btcdBinary, operator)
}

// splitMineAndHeal proves chain control on real nodes: a 4-node network created split
// in two mines apart through spec.mining, the test makes one side longer (equal chains
// never reorg), and removing the partitions joins the nodes on the longer chain, the
// shorter side recording Reorganized events. btcd cannot enforce bans (see
// test/btcd/proxy_chain.go): the split holds because the operator adds no entry across
// groups.
func splitMineAndHeal(t *testing.T, lc *cluster.Cluster, k8s client.Client, namespace, btcdBinary string, operator *cluster.Process) {
	g := NewWithT(t)
	ctx := context.Background()
	start := time.Now()
	network := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "split", Namespace: namespace},
		Spec: bitcoinv1alpha1.BitcoinNetworkSpec{
			Nodes:      4,
			Partitions: []bitcoinv1alpha1.PartitionGroup{{0, 1}, {2, 3}},
			Mining:     &bitcoinv1alpha1.BitcoinNetworkMining{MinHeight: 3, Nodes: []bitcoinv1alpha1.NodeOrdinal{0, 2}, Address: btcd.MiningAddress},
		},
	}
	g.Expect(k8s.Create(ctx, network)).To(Succeed())
	fleetLog := &syncBuffer{}
	nodes, err := fleet.Start(ctx, fleet.Options[*btcd.Node]{
		Config: lc.Config, Namespace: namespace, Network: network.Name,
		Start: fleet.Btcd(btcdBinary, lc.Dir), Log: fleetLog,
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer nodes.Stop()
	defer func() {
		if t.Failed() {
			dump(t, lc, operator, nodes, fleetLog.String())
		}
	}()
	var pods []*btcd.Node
	g.Eventually(func(g Gomega) {
		running := nodes.Nodes()
		pods = nil
		for i := range 4 {
			n, ok := running[fmt.Sprintf("split-sts-%d", i)]
			g.Expect(ok).To(BeTrue(), "the node of pod split-sts-%d", i)
			pods = append(pods, n)
		}
	}, convergeTimeout, interval).Should(Succeed())
	tip := func(g Gomega, i int) string {
		hash, err := pods[i].BestBlockHash(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		return hash
	}

	// Each group mines to minHeight on its own: two chains of height 3.
	g.Eventually(func(g Gomega) {
		cur := expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionPartitioned)
		for _, n := range cur.Status.Nodes {
			g.Expect(n.Blocks).To(HaveValue(BeEquivalentTo(3)), "node %d", n.Ordinal)
		}
		g.Expect(tip(g, 1)).To(Equal(tip(g, 0)))
		g.Expect(tip(g, 3)).To(Equal(tip(g, 2)))
		g.Expect(tip(g, 2)).NotTo(Equal(tip(g, 0)))
		synced := meta.FindStatusCondition(cur.Status.Conditions, bitcoinv1alpha1.ConditionSynced)
		g.Expect(synced).NotTo(BeNil())
		g.Expect(synced.Reason).To(Equal("Diverged"))
	}, convergeTimeout, interval).Should(Succeed())
	g.Expect(linkedPeers(g, pods[0], pods)).To(ConsistOf(pods[1].P2PAddr()), "node 0 links only its group")
	t.Logf("created split, each group mined to height 3 apart, Partitioned and Diverged, after %.1f s", time.Since(start).Seconds())

	// The test makes the second group's chain longer, then heals.
	hashes, err := pods[2].Generate(ctx, 2)
	g.Expect(err).NotTo(HaveOccurred())
	longer := hashes[len(hashes)-1]
	g.Eventually(func(g Gomega) { g.Expect(tip(g, 3)).To(Equal(longer)) }, convergeTimeout, interval).Should(Succeed())
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"partitions":null}}`))
	g.Expect(k8s.Patch(ctx, network.DeepCopy(), patch)).To(Succeed())
	start = time.Now()
	// btcd syncs from the one peer it chose at connection time and learns of other
	// chains only from new blocks' announcements (netsync's syncPeer and handleInvMsg),
	// where Core asks every new peer for headers. So once the groups are linked again,
	// the longer side mines one more block, as a network mining by interval would.
	g.Eventually(func(g Gomega) {
		for i, n := range pods {
			g.Expect(linkedPeers(g, n, pods)).To(HaveLen(3), "node %d's connections", i)
		}
	}, convergeTimeout, interval).Should(Succeed())
	hashes, err = pods[2].Generate(ctx, 1)
	g.Expect(err).NotTo(HaveOccurred())
	longer = hashes[0]
	g.Eventually(func(g Gomega) {
		for i := range 4 {
			g.Expect(tip(g, i)).To(Equal(longer), "node %d on the longer chain", i)
		}
		cur := expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionSynced)
		p := meta.FindStatusCondition(cur.Status.Conditions, bitcoinv1alpha1.ConditionPartitioned)
		g.Expect(p.Reason).To(Equal("NotRequested"))
		for _, n := range cur.Status.Nodes {
			g.Expect(n.Reorgs).To(BeEquivalentTo(map[int32]int{0: 1, 1: 1}[n.Ordinal]), "status.nodes[%d].reorgs", n.Ordinal)
		}
		var events corev1.EventList
		g.Expect(k8s.List(ctx, &events, client.InNamespace(namespace))).To(Succeed())
		var reorgs []string
		for _, e := range events.Items {
			if e.InvolvedObject.Name == network.Name && e.Reason == "Reorganized" {
				reorgs = append(reorgs, e.Message)
			}
		}
		g.Expect(reorgs).To(ContainElements(HavePrefix("Node 0 switched from height 3"), HavePrefix("Node 1 switched from height 3")))
	}, convergeTimeout, interval).Should(Succeed())
	t.Logf("healed: every node on the longer chain, Synced, the shorter side Reorganized, after %.1f s", time.Since(start).Seconds())
}

// startPlane starts the local control plane, which stops with the test, and the
// operator with args, and returns them with a client and the btcd binary.
func startPlane(t *testing.T, log io.Writer, args ...string) (*cluster.Cluster, client.Client, *cluster.Process, string) {
	g := NewWithT(t)
	ctx := context.Background()
	lc, err := cluster.Start(ctx, cluster.Options{Log: log})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(lc.Stop)
	k8s, err := client.New(lc.Config, client.Options{Scheme: controller.NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := lc.InstallOperator(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	binary, err := lc.BuildOperator(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	operator, err := lc.StartOperator("operator", binary, kubeconfig, args...)
	g.Expect(err).NotTo(HaveOccurred())
	btcdBinary, err := btcd.Binary()
	g.Expect(err).NotTo(HaveOccurred())
	return lc, k8s, operator, btcdBinary
}

// linkedPeers returns the other nodes that n holds a P2P connection with, in either
// direction, from btcd's own getpeerinfo. An inbound peer's address is its
// connection's source, always 127.0.0.1 here, so only outbound connections name their
// node; the others' outbound lists are asked for the inbound side.
func linkedPeers(g Gomega, n *btcd.Node, all []*btcd.Node) []string {
	ctx := context.Background()
	var linked []string
	for _, other := range all {
		if other == n {
			continue
		}
		if dials(g, ctx, n, other) || dials(g, ctx, other, n) {
			linked = append(linked, other.P2PAddr())
		}
	}
	return linked
}

// dials reports whether from holds an outbound connection to to.
func dials(g Gomega, ctx context.Context, from, to *btcd.Node) bool {
	c := from.Client()
	peers, err := c.GetPeerInfo(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	return slices.ContainsFunc(peers, func(p bitcoin.Peer) bool { return !p.Inbound && p.Addr == to.P2PAddr() })
}

func expectCondition(g Gomega, k8s client.Client, n *bitcoinv1alpha1.BitcoinNetwork, condition string) *bitcoinv1alpha1.BitcoinNetwork {
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
	c := meta.FindStatusCondition(cur.Status.Conditions, condition)
	g.Expect(c).NotTo(BeNil(), "condition %s", condition)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "condition %s: %s", condition, c.Message)
	return cur
}

func networkCredentials(g Gomega, k8s client.Client, n *bitcoinv1alpha1.BitcoinNetwork) fleet.Credentials {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Labels: map[string]string{render.LabelInstance: n.Name}}}
	creds, err := fleet.NetworkSecret(k8s)(context.Background(), pod)
	g.Expect(err).NotTo(HaveOccurred())
	return creds
}

// dump prints what a failure needs: the operator's log tail, the fleet's log, the
// objects and each btcd's log tail.
func dump(t *testing.T, lc *cluster.Cluster, operator *cluster.Process, nodes *fleet.Fleet[*btcd.Node], fleetLog string) {
	tail := func(path string, lines int) string {
		data, _ := os.ReadFile(path)
		all := strings.Split(string(data), "\n")
		return strings.Join(all[max(0, len(all)-lines):], "\n")
	}
	t.Logf("--- operator log (last 80 lines) ---\n%s", tail(operator.LogPath, 80))
	t.Logf("--- fleet ---\n%s", fleetLog)
	out, _ := lc.Kubectl(context.Background(), "get", "bitcoinnetworks,pods", "-A", "-o", "wide").CombinedOutput()
	t.Logf("--- objects ---\n%s", out)
	for name, n := range nodes.Nodes() {
		t.Logf("--- btcd of %s (last 20 lines) ---\n%s", name, tail(n.LogPath(), 20))
	}
}

// syncBuffer holds the fleet's log, which its own goroutine writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

//go:build nodes

package nodes

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/btcd"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// blocksPerSize is how many blocks each size's figures are taken over, one at a time,
// each mined on another node.
const blocksPerSize = 5

// TestPropagation measures real P2P at size, on btcd: for each network size in
// NODES_PROPAGATION (e.g. "10,50"), how long the operator takes to wire the nodes into
// a Connected network, the diameter in hops of the P2P graph btcd reports, how long a
// block mined on one node takes to reach every node, and how long the network then
// takes to show Synced (at the operator's default --peer-period). It prints figures
// and asserts only that every block reaches every node. `make bench-propagation`
// runs it; docs/benchmarks.md has the figures.
func TestPropagation(t *testing.T) {
	list := os.Getenv("NODES_PROPAGATION")
	if list == "" {
		t.Skip("NODES_PROPAGATION is not set (make bench-propagation sets it)")
	}
	g := NewWithT(t)
	ctrl.SetLogger(logr.Discard())
	lc, k8s, operator, btcdBinary := startPlane(t, io.Discard)
	defer operator.Stop(10 * time.Second)

	var rows []string
	for _, field := range strings.Split(list, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(field))
		g.Expect(err).NotTo(HaveOccurred(), "NODES_PROPAGATION: %q", field)
		rows = append(rows, propagate(t, lc, k8s, btcdBinary, size))
		t.Logf("%s", rows[len(rows)-1]) // a later size may fail: keep this one's figures
	}
	t.Logf("btcd (test/btcd), operator defaults (--peer-period 30s)\n| nodes | Connected after create | diameter (hops) | block to every node, median / max | Synced after the block, median / max |\n| --- | --- | --- | --- | --- |\n%s",
		strings.Join(rows, "\n"))
}

// propagate runs one network of size nodes and returns its row of figures.
func propagate(t *testing.T, lc *cluster.Cluster, k8s client.Client, btcdBinary string, size int) string {
	g := NewWithT(t)
	ctx := context.Background()
	ns := testkit.CreateNamespace(t, k8s, fmt.Sprintf("prop-%d", size))
	network := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "prop", Namespace: ns},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: int32(size)},
	}
	timeout := 2*time.Minute + time.Duration(size)*3*time.Second
	created := time.Now()
	g.Expect(k8s.Create(ctx, network)).To(Succeed())
	fleetLog := &syncBuffer{}
	nodes, err := fleet.Start(ctx, fleet.Options[*btcd.Node]{
		Config: lc.Config, Namespace: ns, Network: network.Name, Start: fleet.Btcd(btcdBinary, lc.Dir), Log: fleetLog,
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer nodes.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("--- fleet ---\n%s", fleetLog.String())
		}
	}()

	var pods []*btcd.Node
	g.Eventually(func(g Gomega) {
		cur := expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionConnected)
		g.Expect(cur.Status.ReadyNodes).To(BeEquivalentTo(size))
		running := nodes.Nodes()
		pods = nil
		for i := range size {
			n, ok := running[fmt.Sprintf("prop-sts-%d", i)]
			g.Expect(ok).To(BeTrue(), "the btcd of pod prop-sts-%d", i)
			pods = append(pods, n)
		}
	}, timeout, interval).Should(Succeed())
	connected := time.Since(created)
	diameter := p2pDiameter(g, pods)

	var reach, synced []time.Duration
	for b := range blocksPerSize {
		miner := pods[(b*7)%size]
		hashes, err := miner.Generate(ctx, 1)
		g.Expect(err).NotTo(HaveOccurred())
		mined := time.Now()
		reach = append(reach, everyNodeAt(t, pods, hashes[0], timeout))
		g.Eventually(func(g Gomega) {
			cur := expectCondition(g, k8s, network, bitcoinv1alpha1.ConditionSynced)
			c := meta.FindStatusCondition(cur.Status.Conditions, bitcoinv1alpha1.ConditionSynced)
			g.Expect(c.Message).To(ContainSubstring(hashes[0]))
		}, timeout, 50*time.Millisecond).Should(Succeed())
		synced = append(synced, time.Since(mined))
	}
	g.Expect(k8s.Delete(ctx, network)).To(Succeed())
	return fmt.Sprintf("| %d | %.1f s | %d | %s / %s | %.1f s / %.1f s |", size, connected.Seconds(), diameter,
		median(reach).Round(time.Millisecond), slices.Max(reach).Round(time.Millisecond),
		median(synced).Seconds(), slices.Max(synced).Seconds())
}

// everyNodeAt polls every node until its tip is hash, and returns how long the last
// one took from the call.
func everyNodeAt(t *testing.T, pods []*btcd.Node, hash string, timeout time.Duration) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Duration
	for i, n := range pods {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			for ctx.Err() == nil {
				if tip, err := n.BestBlockHash(ctx); err == nil && tip == hash {
					mu.Lock()
					last = max(last, time.Since(start))
					mu.Unlock()
					return
				}
				time.Sleep(10 * time.Millisecond) // the polling interval: the figures' resolution
			}
			t.Errorf("node %d never reached block %s", i, hash)
		})
	}
	wg.Wait()
	return last
}

// p2pDiameter is the longest shortest path, in hops, of the graph of P2P connections
// the nodes report (outbound ones, which name their node).
func p2pDiameter(g Gomega, pods []*btcd.Node) int {
	index := map[string]int{}
	for i, n := range pods {
		index[n.P2PAddr()] = i
	}
	links := make([][]int, len(pods))
	for i, n := range pods {
		c := n.Client()
		peers, err := c.GetPeerInfo(context.Background())
		g.Expect(err).NotTo(HaveOccurred())
		for _, p := range peers {
			if j, ok := index[p.Addr]; ok && !p.Inbound {
				links[i], links[j] = append(links[i], j), append(links[j], i)
			}
		}
	}
	diameter := 0
	for from := range pods {
		hops := map[int]int{from: 0}
		queue := []int{from}
		for len(queue) > 0 {
			at := queue[0]
			queue = queue[1:]
			for _, next := range links[at] {
				if _, seen := hops[next]; !seen {
					hops[next] = hops[at] + 1
					queue = append(queue, next)
				}
			}
		}
		g.Expect(hops).To(HaveLen(len(pods)), "node %d reaches every node", from)
		for _, h := range hops {
			diameter = max(diameter, h)
		}
	}
	return diameter
}

func median(ds []time.Duration) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

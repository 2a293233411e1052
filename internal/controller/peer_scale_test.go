package controller

import (
	"context"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
)

// scaleNodes is the largest network the API admits.
const scaleNodes = 1000

// scaleLatency is how long each double takes to answer: a pod network's round trip
// and a busy bitcoind's handling. On loopback alone a call takes a quarter of that.
const scaleLatency = 2 * time.Millisecond

// The rounds of one network of 1,000 nodes: the first, which wires every node, and a
// settled one. Each node is a Bitcoin Core double on its own loopback IP, answering
// after scaleLatency, called over real HTTP by the reconciler's own round. The test
// prints what each round took against the round's deadline (8 to 11.5 s of 20 s for
// the wiring round on two idle cores), its calls and its allocations: a figure, not an
// assertion, since the doubles share the test's CPU and a busy machine stretches any
// time. It fails when a round leaves a node unasked or unwired, with time to spare.
func TestRoundsOfAThousandNodes(t *testing.T) {
	g := NewWithT(t)
	world := &bitcointest.Network{}
	doubles, ready := startScaleDoubles(t, world, scaleNodes)
	events := &countingRecorder{}
	r := &PeerReconciler{Recorder: events, rounds: newPeerRounds(), Period: 30 * time.Second}
	network := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Namespace: "scale", Name: "scale", UID: "scale-uid"},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: scaleNodes},
	}
	creds := &credentials{secret: "scale-rpc-credentials", version: "1", user: "scale", password: "scale-password"}
	state := r.rounds.of(network)

	for _, name := range []string{"wiring", "settled"} {
		round := &peerRound{ready: ready, creds: creds}
		calls := countCalls(doubles)
		var mem goruntime.MemStats
		goruntime.ReadMemStats(&mem)
		allocated := mem.TotalAlloc
		// Not the round's deadline: a bound for a machine that stalls (see above).
		ctx, cancel := context.WithTimeout(context.Background(), 10*roundDeadline)
		begun := time.Now()
		r.runRound(ctx, network, state, round)
		took, cutShort := time.Since(begun), ctx.Err()
		cancel()
		goruntime.GC()
		goruntime.ReadMemStats(&mem)
		fmt.Printf("round of %d nodes answering in %s, %s: %s (deadline %s); %s; %.0f MiB allocated, heap %.0f MiB after (doubles included)\n",
			scaleNodes, scaleLatency, name, took.Round(time.Millisecond), roundDeadline, callsSince(calls, doubles),
			float64(mem.TotalAlloc-allocated)/(1<<20), float64(mem.HeapAlloc)/(1<<20))

		g.Expect(cutShort).NotTo(HaveOccurred(), "the %s round stalled", name)
		for _, n := range ready {
			a := round.answers[n.Ordinal]
			g.Expect(a.err).NotTo(HaveOccurred(), "node %d", n.Ordinal)
			g.Expect(a.skipped).To(BeFalse(), "node %d was not asked", n.Ordinal)
		}
		want := wantedPeers(ready, split{}, scaleNodes)
		for i, d := range doubles {
			g.Expect(sorted(d.AddedNodes())).To(Equal(want[ready[i].p2p]), "node %d's entries", i)
		}
		g.Expect(world.Connected()).To(BeTrue())
		g.Expect(round.changed).To(Equal(name == "wiring"))
	}
	g.Expect(events.count.Load()).To(BeNumerically("<=", 2), "one PeerAdded event, no failure")
}

// startScaleDoubles starts a double per node on loopback IPs of the suite's range, and
// returns them with the round's ready nodes, in ordinal order.
func startScaleDoubles(t *testing.T, world *bitcointest.Network, nodes int) ([]*bitcointest.Node, []readyNode) {
	g := NewWithT(t)
	var subnets []string
	for range (nodes + 249) / 250 {
		subnet, err := podIPs.Subnet()
		g.Expect(err).NotTo(HaveOccurred())
		subnets = append(subnets, subnet)
	}
	doubles := make([]*bitcointest.Node, 0, nodes)
	ready := make([]readyNode, 0, nodes)
	t.Cleanup(func() {
		for _, d := range doubles {
			d.Stop()
		}
	})
	for i := range nodes {
		ip := fmt.Sprintf("%s.%d", subnets[i/250], i%250+1)
		d, err := world.Start(ip+":18443", ip+":18444", "scale", "scale-password")
		g.Expect(err).NotTo(HaveOccurred())
		d.SetLatency(scaleLatency)
		doubles = append(doubles, d)
		n := readyNode{pod: types.UID(fmt.Sprint("pod-", i)), rpc: ip + ":18443", p2p: ip + ":18444"}
		n.Ordinal, n.NodeName, n.Ready, n.IP = int32(i), fmt.Sprintf("scale-sts-%d", i), true, ip
		ready = append(ready, n)
	}
	return doubles, ready
}

var scaleMethods = []string{"getaddednodeinfo", "getpeerinfo", "getblockchaininfo", "getnetworkinfo", "addnode", "disconnectnode"}

func countCalls(doubles []*bitcointest.Node) map[string]int {
	calls := map[string]int{}
	for _, d := range doubles {
		for _, m := range scaleMethods {
			calls[m] += d.Calls(m)
		}
	}
	return calls
}

func callsSince(before map[string]int, doubles []*bitcointest.Node) string {
	now := countCalls(doubles)
	total, out := 0, ""
	for _, m := range scaleMethods {
		total += now[m] - before[m]
		out += fmt.Sprintf(" %s %d", m, now[m]-before[m])
	}
	return fmt.Sprintf("%d calls (%.1f per node):%s", total, float64(total)/float64(len(doubles)), out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// countingRecorder counts the events of a round run without a manager.
type countingRecorder struct{ count atomic.Int64 }

func (r *countingRecorder) Event(runtime.Object, string, string, string) { r.count.Add(1) }
func (r *countingRecorder) Eventf(runtime.Object, string, string, string, ...any) {
	r.count.Add(1)
}
func (r *countingRecorder) AnnotatedEventf(runtime.Object, map[string]string, string, string, string, ...any) {
	r.count.Add(1)
}

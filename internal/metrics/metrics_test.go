package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

var (
	netA = Network{Namespace: "ns", Name: "a"}
	netB = Network{Namespace: "ns", Name: "b"}
)

// reset deletes every series, so that each test starts from none.
func reset() {
	for _, c := range Collectors() {
		switch v := c.(type) {
		case *prometheus.GaugeVec:
			v.Reset()
		case *prometheus.CounterVec:
			v.Reset()
		case *prometheus.HistogramVec:
			v.Reset()
		}
	}
	statusNodes, peerNodes, tips = ordinals{}, ordinals{}, tipMemory{}
}

// series counts the series of the network across the per-network families.
func series(n Network) int {
	count := 0
	for _, f := range append(statusFamilies[:len(statusFamilies):len(statusFamilies)], peerFamilies...) {
		ch := make(chan prometheus.Metric, 1024)
		f.Collect(ch)
		close(ch)
		for m := range ch {
			if metricHas(m, n) {
				count++
			}
		}
	}
	return count
}

func metricHas(m prometheus.Metric, n Network) bool {
	var ns, name string
	var out dto.Metric
	_ = m.Write(&out)
	for _, l := range out.Label {
		switch l.GetName() {
		case labelNamespace:
			ns = l.GetValue()
		case labelNetwork:
			name = l.GetValue()
		}
	}
	return ns == n.Namespace && name == n.Name
}

// Every family passes the linter `promtool check metrics` runs, with a series in each
// so that the linter sees them all.
func TestFamiliesAreLintClean(t *testing.T) {
	g := NewWithT(t)
	reset()
	SetNodes(netA, NodesView{Desired: 2, Ready: 1, MiningInterval: 5 * time.Second, NodeReady: map[int32]bool{0: true, 1: false}})
	SetPeers(netA, PeersView{Nodes: map[int32]NodeAnswer{0: {Answered: true, Height: 5, BestBlockHash: "h"}}})
	ObserveRPC("getpeerinfo", time.Millisecond, syscall.ECONNREFUSED)
	RoundEnded(time.Now(), nil)
	AddnodeChanges(1, 1)
	apiWrites.WithLabelValues("StatefulSet", "", "apply").Inc()

	reg := prometheus.NewPedanticRegistry()
	for _, c := range Collectors() {
		g.Expect(reg.Register(c)).To(Succeed())
	}
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var ours []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), prefix) {
			ours = append(ours, f.GetName())
		}
	}
	g.Expect(ours).To(HaveLen(len(Collectors())), "every family has a series")
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(problems).To(BeEmpty())
}

// The families are registered where the manager's /metrics endpoint serves them from.
func TestFamiliesAreRegisteredWithControllerRuntime(t *testing.T) {
	for _, c := range Collectors() {
		err := ctrlmetrics.Registry.Register(c)
		are := prometheus.AlreadyRegisteredError{}
		if !errors.As(err, &are) {
			t.Errorf("a family is not registered with controller-runtime's registry: %v", err)
		}
	}
}

func TestScalingDownDeletesTheGoneNodesSeries(t *testing.T) {
	g := NewWithT(t)
	reset()
	three := map[int32]NodeAnswer{}
	for o := range int32(3) {
		three[o] = NodeAnswer{Answered: true, Inbound: 1, Outbound: 1, Height: 7, BestBlockHash: "h"}
	}
	SetNodes(netA, NodesView{Desired: 3, Ready: 3, NodeReady: map[int32]bool{0: true, 1: true, 2: true}})
	SetPeers(netA, PeersView{Nodes: three})
	g.Expect(testutil.CollectAndCount(nodeReady)).To(Equal(3))
	g.Expect(testutil.CollectAndCount(nodePeers)).To(Equal(6))

	delete(three, 2)
	SetNodes(netA, NodesView{Desired: 2, Ready: 2, NodeReady: map[int32]bool{0: true, 1: true}})
	SetPeers(netA, PeersView{Nodes: three})
	g.Expect(testutil.CollectAndCount(nodeReady)).To(Equal(2))
	g.Expect(testutil.CollectAndCount(nodePeers)).To(Equal(4))
	g.Expect(testutil.CollectAndCount(nodeHeight)).To(Equal(2))
	g.Expect(testutil.CollectAndCount(nodeRPCUp)).To(Equal(2))
}

// A node that stops answering keeps its rpc_up series (at 0) and loses its peers and
// height: they are unknown, not zero.
func TestANodeThatDoesNotAnswerHasNoHeight(t *testing.T) {
	g := NewWithT(t)
	reset()
	SetPeers(netA, PeersView{Nodes: map[int32]NodeAnswer{0: {Answered: true, Height: 3, BestBlockHash: "h"}}})
	SetPeers(netA, PeersView{Nodes: map[int32]NodeAnswer{0: {}}})
	g.Expect(testutil.ToFloat64(nodeRPCUp.With(netA.node(0)))).To(BeZero())
	g.Expect(testutil.CollectAndCount(nodeHeight)).To(BeZero())
	g.Expect(testutil.CollectAndCount(nodePeers)).To(BeZero())
	g.Expect(testutil.ToFloat64(bestHeight.With(netA.labels()))).To(Equal(3.0), "the last known best height stands")
}

func TestForgettingANetworkDeletesOnlyItsSeries(t *testing.T) {
	g := NewWithT(t)
	reset()
	for _, n := range []Network{netA, netB} {
		SetNodes(n, NodesView{Desired: 1, Ready: 1, Available: true, NodeReady: map[int32]bool{0: true}})
		SetPeers(n, PeersView{Connected: true, Synced: true, Nodes: map[int32]NodeAnswer{0: {Answered: true, Height: 1, BestBlockHash: "h"}}})
	}
	g.Expect(series(netA)).To(Equal(13))
	ForgetNodes(netA)
	g.Expect(series(netA)).To(Equal(9))
	ForgetPeers(netA)
	g.Expect(series(netA)).To(BeZero())
	g.Expect(series(netB)).To(Equal(13))
}

// The mining interval is exported in seconds while spec.mining.interval is set, and
// its series goes when the interval does: BitcoinNoNewBlocks must not see a network
// without one as due a block every 0 s.
func TestMiningIntervalIsAbsentWithoutOne(t *testing.T) {
	g := NewWithT(t)
	reset()
	SetNodes(netA, NodesView{Desired: 1, MiningInterval: 10 * time.Second, NodeReady: map[int32]bool{}})
	SetNodes(netB, NodesView{Desired: 1, NodeReady: map[int32]bool{}})
	g.Expect(testutil.ToFloat64(miningInterval.With(netA.labels()))).To(Equal(10.0))
	g.Expect(testutil.CollectAndCount(miningInterval)).To(Equal(1))
	SetNodes(netA, NodesView{Desired: 1, NodeReady: map[int32]bool{}})
	g.Expect(testutil.CollectAndCount(miningInterval)).To(BeZero())
}

func TestTipChangeTimestampMovesOnlyWhenTheTipChanges(t *testing.T) {
	g := NewWithT(t)
	reset()
	clock := time.Unix(1000, 0)
	now = func() time.Time { return clock }
	defer func() { now = time.Now }()
	at := func(nodes map[int32]NodeAnswer) float64 {
		SetPeers(netA, PeersView{Nodes: nodes})
		return testutil.ToFloat64(tipChanged.With(netA.labels()))
	}
	forks := map[int32]NodeAnswer{0: {Answered: true, Height: 5, BestBlockHash: "x"}, 1: {Answered: true, Height: 5, BestBlockHash: "y"}}
	g.Expect(at(forks)).To(Equal(1000.0))
	clock = clock.Add(time.Minute)
	for range 20 { // two forks of one height: node 0's tip, whatever the map's order
		g.Expect(at(forks)).To(Equal(1000.0))
	}
	forks[1] = NodeAnswer{Answered: true, Height: 6, BestBlockHash: "z"}
	g.Expect(at(forks)).To(Equal(1060.0))
	g.Expect(testutil.ToFloat64(bestHeight.With(netA.labels()))).To(Equal(6.0))
}

func TestFailureReasons(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("failed to call getpeerinfo on 127.0.0.1:18443: %w", err) }
	for err, want := range map[error]string{
		nil:                                      "",
		wrap(bitcoin.ErrUnauthorized):            reasonUnauthorized,
		wrap(context.DeadlineExceeded):           reasonTimeout,
		wrap(context.Canceled):                   reasonCanceled,
		wrap(syscall.ECONNREFUSED):               reasonConnectionRefused,
		wrap(bitcoin.ErrConnectionClosed):        reasonConnectionClosed,
		wrap(&bitcoin.RPCError{Code: -28}):       reasonRPCError,
		wrap(&bitcoin.RPCError{Code: -23}):       "",
		wrap(&bitcoin.RPCError{Code: -24}):       "",
		wrap(&bitcoin.RPCError{Code: -29}):       "",
		wrap(bitcoin.ErrResponseTooLarge):        reasonBadResponse,
		wrap(errors.New("something unforeseen")): reasonOther,
	} {
		if got := failureReason(err); got != want {
			t.Errorf("failureReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// Every call a bitcoin.Client makes is observed, by method and outcome.
func TestClientCallsAreObserved(t *testing.T) {
	g := NewWithT(t)
	reset()
	c := bitcoin.New("127.0.0.1:1", "user", "password") // nothing listens on port 1
	_, err := c.GetPeerInfo(context.Background())
	g.Expect(err).To(HaveOccurred())
	g.Expect(testutil.ToFloat64(rpcFailures.WithLabelValues("getpeerinfo", reasonConnectionRefused))).To(Equal(1.0))
	g.Expect(testutil.CollectAndCount(rpcDuration)).To(Equal(1))
}

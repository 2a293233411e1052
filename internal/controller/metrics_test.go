package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// seriesIn counts the series of the operator's registry whose namespace label is ns,
// by family.
func seriesIn(g Gomega, ns string) map[string]int {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	count := map[string]int{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" && l.GetValue() == ns {
					count[f.GetName()]++
				}
			}
		}
	}
	return count
}

func total(count map[string]int) int {
	n := 0
	for _, c := range count {
		n += c
	}
	return n
}

// counterValue is the value of the operator's counter family name with labels.
func counterValue(g Gomega, name string, labels map[string]string) float64 {
	v, _ := sample(g, name, labels)
	return v
}

// sample is the value of the first series of the operator's family name that has
// labels (a gauge's or counter's value, a histogram's count), and whether there is one.
func sample(g Gomega, name string, labels map[string]string) (float64, bool) {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// After 100 networks are created and deleted, the operator exports as many series as
// before: each reconciler deletes a network's series when it forgets the network.
// Ten of them have a pod, so that per-node series come and go too.
func TestMetricSeriesGoWithTheirNetworks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	before := total(seriesIn(g, ns))
	writes := func() float64 {
		return counterValue(g, "bitcoin_operator_api_writes_total", map[string]string{"kind": "StatefulSet", "verb": "apply"})
	}
	appliedBefore := writes()

	testkit.By(t, "100 networks")
	const count, withPods = 100, 10
	networks := make([]*bitcoinv1alpha1.BitcoinNetwork, count)
	for i := range networks {
		networks[i] = testkit.CreateNetwork(t, k8s, ns, fmt.Sprintf("metrics-%03d", i), 1)
	}
	for _, n := range networks[:withPods] {
		var sts *appsv1.StatefulSet
		g.Eventually(func(g Gomega) { sts = statefulSet(g, n) }, 2*time.Minute, interval).Should(Succeed())
		createPod(t, sts, 0, podIP(t), false)
	}
	g.Eventually(func(g Gomega) {
		s := seriesIn(g, ns)
		for _, family := range []string{"bitcoin_operator_network_nodes_desired", "bitcoin_operator_network_nodes_ready",
			"bitcoin_operator_network_available", "bitcoin_operator_network_connected", "bitcoin_operator_network_synced",
			"bitcoin_operator_network_partitioned"} {
			g.Expect(s).To(HaveKeyWithValue(family, count), family)
		}
		g.Expect(s).To(HaveKeyWithValue("bitcoin_operator_node_ready", withPods))
	}, 3*time.Minute, interval).Should(Succeed())
	t.Logf("series in the namespace: %d before, %d with the networks", before, total(seriesIn(g, ns)))
	g.Eventually(writes, time.Minute, interval).Should(BeNumerically(">=", appliedBefore+count), "each network's StatefulSet apply counts")

	testkit.By(t, "all deleted")
	for _, n := range networks {
		g.Expect(k8s.Delete(ctx, n)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		var list bitcoinv1alpha1.BitcoinNetworkList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}, time.Minute, interval).Should(Succeed())
	g.Eventually(func(g Gomega) map[string]int { return seriesIn(g, ns) }, time.Minute, interval).
		Should(WithTransform(total, Equal(before)))
}

// The metrics say what the nodes said: a wired network of three Bitcoin Core doubles.
func TestMetricsShowWhatTheNodesSay(t *testing.T) {
	g := NewWithT(t)
	p := newPeerNet(t, "metered", 3)
	network := map[string]string{"namespace": p.network.Namespace, "network": p.network.Name}
	with := func(labels map[string]string, more ...string) map[string]string {
		out := map[string]string{}
		for k, v := range labels {
			out[k] = v
		}
		for i := 0; i+1 < len(more); i += 2 {
			out[more[i]] = more[i+1]
		}
		return out
	}
	added := counterValue(g, "bitcoin_operator_addnode_changes_total", map[string]string{"change": "added"})
	p.startNodes(0, 3)
	p.expectWired(3)
	for _, d := range p.doubles {
		d.SetChain(7, fmt.Sprintf("%064d", 7))
	}

	testkit.By(t, "per network and per node")
	value := func(g Gomega, name string, labels map[string]string) float64 {
		v, ok := sample(g, name, labels)
		g.Expect(ok).To(BeTrue(), "%s%v has no series", name, labels)
		return v
	}
	g.Eventually(func(g Gomega) {
		for name, want := range map[string]float64{"nodes_desired": 3, "nodes_ready": 3, "available": 1, "connected": 1, "synced": 1, "partitioned": 0, "best_height": 7} {
			g.Expect(value(g, "bitcoin_operator_network_"+name, network)).To(Equal(want), name)
		}
		g.Expect(value(g, "bitcoin_operator_network_tip_changed_timestamp_seconds", network)).To(BeNumerically("~", float64(time.Now().Unix()), 120))
		for _, o := range []string{"0", "1", "2"} {
			node := with(network, "ordinal", o)
			g.Expect(value(g, "bitcoin_operator_node_ready", node)).To(Equal(1.0))
			g.Expect(value(g, "bitcoin_operator_node_rpc_up", node)).To(Equal(1.0))
			g.Expect(value(g, "bitcoin_operator_node_height", node)).To(Equal(7.0))
			g.Expect(value(g, "bitcoin_operator_node_peers", with(node, "direction", "inbound"))).To(Equal(2.0), "a full mesh of 3")
			g.Expect(value(g, "bitcoin_operator_node_peers", with(node, "direction", "outbound"))).To(Equal(2.0))
		}
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the operator's work")
	g.Expect(counterValue(g, "bitcoin_operator_addnode_changes_total", map[string]string{"change": "added"})).To(BeNumerically(">=", added+6), "two entries per node")
	g.Expect(value(g, "bitcoin_operator_rpc_call_duration_seconds", map[string]string{"method": "getpeerinfo", "outcome": "success"})).To(BeNumerically(">", 0))
	g.Expect(value(g, "bitcoin_operator_rpc_call_duration_seconds", map[string]string{"method": "addnode", "outcome": "success"})).To(BeNumerically(">", 0))
	g.Expect(value(g, "bitcoin_operator_peer_round_duration_seconds", map[string]string{"outcome": "completed"})).To(BeNumerically(">", 0))
	g.Expect(value(g, "bitcoin_operator_api_writes_total", map[string]string{"kind": "BitcoinNetwork", "subresource": "status", "verb": "apply"})).To(BeNumerically(">", 0))

	testkit.By(t, "a node that stops answering")
	refused := counterValue(g, "bitcoin_operator_rpc_failures_total", map[string]string{"method": "getaddednodeinfo", "reason": "connection_refused"})
	p.doubles[1].Stop()
	g.Eventually(func(g Gomega) {
		g.Expect(value(g, "bitcoin_operator_node_rpc_up", with(network, "ordinal", "1"))).To(Equal(0.0))
		g.Expect(value(g, "bitcoin_operator_network_connected", network)).To(Equal(0.0), "Connected is Unknown")
		g.Expect(counterValue(g, "bitcoin_operator_rpc_failures_total", map[string]string{"method": "getaddednodeinfo", "reason": "connection_refused"})).To(BeNumerically(">", refused))
	}, timeout, interval).Should(Succeed())
	_, ok := sample(g, "bitcoin_operator_node_height", with(network, "ordinal", "1"))
	g.Expect(ok).To(BeFalse(), "the height of a node that does not answer is unknown")
}

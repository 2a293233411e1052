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
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
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
			"bitcoin_operator_network_available", "bitcoin_operator_network_connected", "bitcoin_operator_network_synced"} {
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

//go:build prometheus

package prometheus

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// The endpoint refuses a request without a token (401) and one whose ServiceAccount
// is not bound to the metrics-reader role (403); Prometheus, with a bound one,
// scrapes it and sees the operator's families.
func TestScrapingNeedsAnAuthorizedToken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	testkit.By(t, "a request without a token is refused")
	status, _, err := Scrape(ctx, metricsURL, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusUnauthorized))

	testkit.By(t, "a token not bound to the metrics-reader role is forbidden")
	_, err = cs.CoreV1().ServiceAccounts(Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "unbound"}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	unbound, err := cluster.Token(ctx, cs, Namespace, "unbound")
	g.Expect(err).NotTo(HaveOccurred())
	status, _, err = Scrape(ctx, metricsURL, unbound)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusForbidden))

	testkit.By(t, "Prometheus scrapes the operator with its ServiceAccount's token")
	g.Eventually(func(g Gomega) {
		targets, err := prom.Targets(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(targets).To(ConsistOf(And(
			HaveField("Labels", HaveKeyWithValue("job", Job)),
			HaveField("Health", "up"))))
		up, err := prom.Query(ctx, `up{job="`+Job+`"} == 1`)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(up).To(HaveLen(1))
		// What the endpoint serves is stored: controller-runtime's families have
		// series from the start (the operator's own, once networks exist: below).
		reconciles, err := prom.Query(ctx, `controller_runtime_reconcile_total{controller="bitcoinnetwork"}`)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(reconciles).NotTo(BeEmpty())
	}, alertTimeout, poll).Should(Succeed())
}

// A node that stops answering fires BitcoinNodeDown as a warning while its pod is
// still ready (the network Available), as critical once its pod turns NotReady (the
// network no longer Available), and the alert resolves once the node is back.
func TestNodeDownFiresAndResolves(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := testkit.CreateNamespace(t, k8s, "prom")
	n := testkit.Network(ns, "watched", 3)
	n.Spec.Mining = &bitcoinv1alpha1.BitcoinNetworkMining{MinHeight: 1, Interval: &metav1.Duration{Duration: 5 * time.Second}}
	g.Expect(k8s.Create(ctx, n)).To(Succeed())
	world := &bitcointest.Network{}
	f, err := fleet.Start(ctx, fleet.Options[*bitcointest.Node]{
		Config: lc.Config, Namespace: ns, Network: n.Name, Start: fleet.Doubles(world), Log: os.Stderr,
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(f.Stop)
	sel := `{namespace="` + ns + `",network="watched"}`

	// A node whose pod turned ready before its double listened was down for a moment:
	// its alert, pending, goes at the next evaluation.
	testkit.By(t, "Prometheus sees the network Available, its three nodes answering, its mining interval, and no node down")
	g.Eventually(func(g Gomega) {
		g.Expect(prom.Query(ctx, `bitcoin_operator_network_available`+sel+` == 1`)).To(HaveLen(1))
		g.Expect(prom.Query(ctx, `bitcoin_operator_node_rpc_up`+sel+` == 1`)).To(HaveLen(3))
		g.Expect(prom.Query(ctx, `bitcoin_operator_network_mining_interval_seconds`+sel+` == 5`)).To(HaveLen(1))
		g.Expect(nodeDownAlerts(g, ns)).To(BeEmpty())
	}, alertTimeout, poll).Should(Succeed())

	testkit.By(t, "node 1 stops answering: a warning, the network still Available")
	node, ok := f.Node("watched-sts-1")
	g.Expect(ok).To(BeTrue())
	node.Stop()
	g.Eventually(func(g Gomega) {
		g.Expect(nodeDownAlerts(g, ns)).To(ConsistOf(firing("1", "warning")))
	}, alertTimeout, poll).Should(Succeed())

	testkit.By(t, "its pod turns NotReady, as its failing readiness probe would make it: critical")
	setPodReady(g, ns, "watched-sts-1", false)
	g.Eventually(func(g Gomega) {
		g.Expect(nodeDownAlerts(g, ns)).To(ConsistOf(firing("1", "critical")))
	}, alertTimeout, poll).Should(Succeed())

	testkit.By(t, "the node is back and its pod ready: the alert resolves")
	g.Expect(node.Restart()).To(Succeed())
	setPodReady(g, ns, "watched-sts-1", true)
	g.Eventually(func(g Gomega) {
		g.Expect(nodeDownAlerts(g, ns)).To(BeEmpty())
		g.Expect(prom.Query(ctx, `bitcoin_operator_node_rpc_up`+sel+` == 1`)).To(HaveLen(3))
	}, alertTimeout, poll).Should(Succeed())
}

// nodeDownAlerts returns the pending and firing BitcoinNodeDown alerts of a
// namespace's networks.
func nodeDownAlerts(g Gomega, namespace string) []Alert {
	alerts, err := prom.Alerts(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	var out []Alert
	for _, a := range alerts {
		if a.Labels["alertname"] == "BitcoinNodeDown" && a.Labels["namespace"] == namespace {
			out = append(out, a)
		}
	}
	return out
}

// firing matches a firing BitcoinNodeDown of a node with a severity, its annotations
// rendered and its runbook linked.
func firing(ordinal, severity string) OmegaMatcher {
	return And(
		HaveField("State", "firing"),
		HaveField("Labels", And(HaveKeyWithValue("ordinal", ordinal), HaveKeyWithValue("severity", severity), HaveKeyWithValue("network", "watched"))),
		HaveField("Annotations", And(
			HaveKeyWithValue("summary", HavePrefix("Node "+ordinal+" of ")),
			HaveKeyWithValue("runbook_url", HaveSuffix("/docs/runbooks/BitcoinNodeDown.md")))))
}

// setPodReady plays the kubelet reporting a pod's readiness probe: kwok runs no
// probe, and leaves a running pod's conditions as they are.
func setPodReady(g Gomega, namespace, name string, ready bool) {
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	for i, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			pod.Status.Conditions[i].Status = status
			pod.Status.Conditions[i].LastTransitionTime = metav1.Now()
		}
	}
	for i := range pod.Status.ContainerStatuses {
		pod.Status.ContainerStatuses[i].Ready = ready
		pod.Status.ContainerStatuses[i].Started = ptr.To(true)
	}
	_, err = cs.CoreV1().Pods(namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
}

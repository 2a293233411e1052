//go:build faults

// Package faults proves the operator on its worst days, on one local control plane of
// real Kubernetes components (test/cluster): its leader killed, the API server away
// and etcd restarted, a Node lost, and hostile tenants beside a healthy one. The
// operator runs as separate processes under its ServiceAccount, restarted as a
// kubelet restarts a container that exits.
package faults

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const (
	convergeTimeout = 60 * time.Second
	interval        = 100 * time.Millisecond
	// The node lifecycle controller marks a Node whose Lease went unrenewed for
	// nodeMonitorGrace not ready, and its pods with it; kwok renews every quarter of
	// nodeLease.
	nodeLease        = 8 * time.Second
	nodeMonitorGrace = 20 * time.Second
)

var (
	lc         *cluster.Cluster
	k8s        client.Client
	binary     string
	kubeconfig string
)

func TestMain(m *testing.M) {
	testkit.Main("faults", func() (int, error) { return runSuite(m) })
}

func runSuite(m *testing.M) (code int, err error) {
	start := time.Now()
	defer func() { fmt.Fprintf(os.Stderr, "The fault suite took %.0f s\n", time.Since(start).Seconds()) }()
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	ctx := context.Background()
	lc, err = cluster.Start(ctx, cluster.Options{
		AuditUsers: []string{cluster.OperatorUser}, Log: os.Stderr, NodeLease: nodeLease,
		ControllerManagerFlags: []string{
			fmt.Sprintf("--node-monitor-grace-period=%s", nodeMonitorGrace), "--node-monitor-period=1s",
		},
	})
	if err != nil {
		return 1, err
	}
	defer lc.Stop()
	if k8s, err = client.New(lc.Config, client.Options{Scheme: controller.NewScheme()}); err != nil {
		return 1, err
	}
	if kubeconfig, err = lc.InstallOperator(ctx); err != nil {
		return 1, err
	}
	if binary, err = lc.BuildOperator(ctx); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// newNamespace creates a namespace of its own for a test, and prints its objects if
// the test fails.
func newNamespace(t *testing.T) string {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := lc.Kubectl(context.Background(), "get", "nodes,bitcoinnetworks,statefulsets,pods", "-A", "-o", "wide").CombinedOutput()
			fmt.Fprintf(os.Stderr, "--- objects ---\n%s\n", out)
		}
	})
	return testkit.CreateNamespace(t, k8s, "faults")
}

func getNetwork(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) *bitcoinv1alpha1.BitcoinNetwork {
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
	return cur
}

// expectAvailable waits until every node of the network is ready in its status.
func expectAvailable(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork, timeout time.Duration) {
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, n)
		g.Expect(cur.Status.ReadyNodes).To(Equal(n.Spec.Nodes))
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

// operatorWrites returns the operator's write requests in namespace since a moment,
// from the audit log, as "verb resource/subresource name".
func operatorWrites(g Gomega, namespace string, since time.Time) []string {
	all, err := lc.OperatorWrites(since, time.Time{})
	g.Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, e := range all {
		if e.ObjectRef.Namespace == namespace {
			out = append(out, strings.TrimSuffix(e.Verb+" "+e.ObjectRef.Resource+"/"+e.ObjectRef.Subresource, "/")+" "+e.ObjectRef.Name)
		}
	}
	return out
}

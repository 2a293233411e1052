//go:build e2e

// Package e2e proves the operator's lifecycle on a local control plane of real
// Kubernetes components (test/cluster): the StatefulSet controller creates the pods,
// the garbage collector deletes them, the scheduler binds them and kwok makes them
// Ready. The operator runs as a separate process under its ServiceAccount.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// Named timeouts: a 3-node network converges in a few seconds here.
const (
	convergeTimeout = 60 * time.Second
	interval        = 200 * time.Millisecond
	// stuckAfter is the operator's --rollout-stuck-after: a few seconds instead of
	// minutes, so that a stuck rollout shows at once.
	stuckAfter = 3 * time.Second
)

var (
	lc         *cluster.Cluster
	k8s        client.Client
	operator   *cluster.Process
	binary     string
	kubeconfig string
)

func TestMain(m *testing.M) {
	testkit.Main("e2e", func() (int, error) { return runSuite(m) })
}

func runSuite(m *testing.M) (code int, err error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	ctx := context.Background()
	lc, err = cluster.Start(ctx, cluster.Options{AuditUsers: []string{cluster.OperatorUser}, Log: os.Stderr})
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
	if err := startOperator(); err != nil {
		return 1, err
	}
	code = m.Run()
	// RBAC: the operator met no forbidden error during the whole suite.
	if log := operatorLog(); strings.Contains(strings.ToLower(log), "forbidden") {
		fmt.Fprintln(os.Stderr, "The operator's log shows a forbidden error:")
		code = 1
	}
	if code != 0 {
		dumpState(ctx)
	}
	return code, nil
}

// startOperator starts (or restarts) the operator binary.
func startOperator() error {
	var err error
	operator, err = lc.StartOperator("operator", binary, kubeconfig, "--zap-log-level=debug", "--rollout-stuck-after="+stuckAfter.String())
	return err
}

func operatorLog() string {
	data, _ := os.ReadFile(operator.LogPath)
	return string(data)
}

// dumpState prints what a failure needs: the operator's log tail and the objects.
func dumpState(ctx context.Context) {
	fmt.Fprintf(os.Stderr, "\n--- operator log (last 60 lines) ---\n%s\n", testkit.Tail(operator.LogPath, 60))
	out, _ := lc.Kubectl(ctx, "get", "bitcoinnetworks,statefulsets,services,pods", "-A", "-o", "wide").CombinedOutput()
	fmt.Fprintf(os.Stderr, "--- objects ---\n%s\n", out)
}

// newNamespace creates a namespace of its own for a test, enforcing the restricted
// Pod Security Standard.
func newNamespace(t *testing.T) string {
	t.Helper()
	return testkit.CreateNamespace(t, k8s, "e2e")
}

// kubectl runs kubectl against the local cluster as admin.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := lc.Kubectl(context.Background(), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

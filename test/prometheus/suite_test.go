//go:build prometheus

// The suite runs a real Prometheus server (hack/prometheus.sh) on the local control
// plane (test/cluster) against the operator binary, which runs as its
// ServiceAccount: Prometheus scrapes the operator's HTTPS endpoint with the token of
// a ServiceAccount bound to the metrics-reader role, evaluates the shipped alert
// rules, and the tests read its HTTP API.
package prometheus

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const (
	// interval is Prometheus' scrape and rule evaluation interval.
	interval = time.Second
	// alertFor replaces every shipped rule's `for` (minutes): the expressions, labels
	// and annotations are evaluated as shipped; promtool's unit tests
	// (config/prometheus/tests) prove the shipped durations on simulated time.
	alertFor = 3 * time.Second
	// peerPeriod is the operator's --peer-period: a node that stops answering shows
	// within seconds instead of 30.
	peerPeriod   = 2 * time.Second
	alertTimeout = 60 * time.Second
	poll         = 250 * time.Millisecond
)

var (
	lc         *cluster.Cluster
	k8s        client.Client
	cs         kubernetes.Interface
	operator   *cluster.Process
	prom       *Server
	metricsURL string // the operator's metrics endpoint, host:port
)

func TestMain(m *testing.M) {
	testkit.Main("prometheus", func() (int, error) { return runSuite(m) })
}

func runSuite(m *testing.M) (code int, err error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	ctx := context.Background()
	begun := time.Now()
	binary, err := Binary(ctx)
	if err != nil {
		return 1, err
	}
	if lc, err = cluster.Start(ctx, cluster.Options{Log: os.Stderr}); err != nil {
		return 1, err
	}
	defer lc.Stop()
	if k8s, err = client.New(lc.Config, client.Options{Scheme: controller.NewScheme()}); err != nil {
		return 1, err
	}
	if cs, err = kubernetes.NewForConfig(lc.Config); err != nil {
		return 1, err
	}
	kubeconfig, err := lc.InstallOperator(ctx)
	if err != nil {
		return 1, err
	}
	manager, err := lc.BuildOperator(ctx)
	if err != nil {
		return 1, err
	}
	metricsURL = fmt.Sprintf("127.0.0.1:%d", cluster.FreePort())
	// A later --metrics-bind-address overrides StartOperator's own.
	if operator, err = lc.StartOperator("operator", manager, kubeconfig,
		"--metrics-bind-address="+metricsURL, "--peer-period="+peerPeriod.String()); err != nil {
		return 1, err
	}
	// The endpoint listens once the operator's manager has started, some time after
	// the process: the first test must not race it.
	if err = cluster.Poll(ctx, 2*time.Minute, "the operator's metrics endpoint to listen", func() (bool, error) {
		_, _, err := Scrape(ctx, metricsURL, "")
		return err == nil, nil
	}); err != nil {
		return 1, err
	}
	token, err := ScraperToken(ctx, cs)
	if err != nil {
		return 1, err
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return 1, err
	}
	rules, err := RuleGroupsFor(root+"/"+RulesPath, alertFor)
	if err != nil {
		return 1, err
	}
	if prom, err = Start(ctx, lc, Options{Binary: binary, Target: metricsURL, Token: token, Rules: rules, Interval: interval}); err != nil {
		return 1, err
	}
	fmt.Fprintf(os.Stderr, "prometheus: suite ready after %s\n", time.Since(begun).Round(100*time.Millisecond))
	code = m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "\n--- operator log (last 40 lines) ---\n%s\n", testkit.Tail(operator.LogPath, 40))
		fmt.Fprintf(os.Stderr, "\n--- prometheus log (last 40 lines) ---\n%s\n", testkit.Tail(prom.Proc.LogPath, 40))
	}
	return code, nil
}

// Command manager runs the bitcoin-operator: flags and manager wiring only; the
// reconcilers live in internal/controller.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bitcoinops/bitcoin-operator/internal/controller"
)

func main() {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		qps                    float64
		burst, concurrency     int
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas reconciles.")
	flag.Float64Var(&qps, "kube-api-qps", 50, "Requests per second to the Kubernetes API, sustained.")
	flag.IntVar(&burst, "kube-api-burst", 100, "Requests to the Kubernetes API in a burst.")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 4, "Networks each reconciler works on at once.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")

	if err := run(metricsAddr, probeAddr, leaderElect, float32(qps), burst, concurrency); err != nil {
		setupLog.Error(err, "Operator failed")
		os.Exit(1)
	}
}

func run(metricsAddr, probeAddr string, leaderElect bool, qps float32, burst, concurrency int) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = qps, burst

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 controller.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "bitcoin-operator.bitcoinops.io",
		Cache:                  controller.CacheOptions(os.Getenv("WATCH_NAMESPACE")),
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controller.Setup(ctx, mgr, controller.Options{MaxConcurrentReconciles: concurrency}); err != nil {
		return fmt.Errorf("failed to set up the reconcilers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting the operator", "watchNamespaces", os.Getenv("WATCH_NAMESPACE"))
	return mgr.Start(ctx)
}

// Command manager runs the bitcoin-operator: flags and manager wiring only; the
// reconcilers live in internal/controller.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
)

// leaderElectionID names the Lease the replicas elect their leader with.
const leaderElectionID = "bitcoin-operator.bitcoinops.io"

// flags are the operator's command line.
type flags struct {
	metricsAddr, probeAddr, pprofAddr string
	metricsSecure                     bool
	metricsCertPath                   string
	enableHTTP2                       bool
	leaderElect                       bool
	leaderNamespace                   string
	leaderIdentity                    string
	leaseDuration                     time.Duration
	renewDeadline                     time.Duration
	retryPeriod                       time.Duration
	shutdownGrace                     time.Duration
	qps                               float64
	burst, concurrency                int
	maxNodes                          int
	peerPeriod                        time.Duration
	stuckAfter                        time.Duration
	rpcAllowIP                        string
	operatorNamespace                 string
	operatorPodLabels                 string
	defaultImage                      string
}

func main() {
	var f flags
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&f.metricsSecure, "metrics-secure", true, "Serve the metrics over HTTPS, to callers whose token the API server authenticates and authorizes for get on /metrics; false: plain HTTP to anyone.")
	flag.StringVar(&f.metricsCertPath, "metrics-cert-path", "", "Directory of the metrics endpoint's tls.crt and tls.key, reloaded when they change; empty: a self-signed certificate made at start.")
	flag.BoolVar(&f.enableHTTP2, "enable-http2", false, "Allow HTTP/2 on the metrics endpoint (off: HTTP/1.1 only, against the HTTP/2 stream reset and rapid reset attacks).")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.StringVar(&f.pprofAddr, "pprof-bind-address", "", "Address of Go's pprof endpoints (/debug/pprof/), unauthenticated: bind it to loopback and port-forward. Empty: off.")
	flag.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas reconciles.")
	flag.StringVar(&f.leaderNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease; empty: the operator's own (in a cluster).")
	flag.StringVar(&f.leaderIdentity, "leader-elect-identity", os.Getenv("POD_NAME"), "This replica's name in the Lease, unique among the replicas; defaults to $POD_NAME, so that a container the kubelet restarts takes its own Lease back at once. Empty: host name and a random suffix.")
	flag.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", 10*time.Second, "How long a standby waits after the leader's last renewal before it takes over: the longest failover after a crash.")
	flag.DurationVar(&f.renewDeadline, "leader-elect-renew-deadline", 7*time.Second, "How long the leader tries to renew before it gives up leading and exits; shorter than the lease duration.")
	flag.DurationVar(&f.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often the leader renews and a standby tries to take over.")
	flag.DurationVar(&f.shutdownGrace, "graceful-shutdown-timeout", 8*time.Second, "How long the reconcilers and peer rounds get to stop on SIGTERM before the Lease is released; shorter than the pod's terminationGracePeriodSeconds (10 s).")
	flag.Float64Var(&f.qps, "kube-api-qps", 200, "Requests per second to the Kubernetes API, sustained.")
	flag.IntVar(&f.burst, "kube-api-burst", 400, "Requests to the Kubernetes API in a burst.")
	flag.IntVar(&f.concurrency, "max-concurrent-reconciles", 64, "Networks each reconciler works on at once; a reconcile mostly waits on the API server.")
	flag.IntVar(&f.maxNodes, "max-nodes-per-network", 0, "The most nodes a network may have (spec.nodes); a network above it is Degraded (TooManyNodes) and keeps its objects as they are. 0: the API's maximum, 1000.")
	flag.DurationVar(&f.peerPeriod, "peer-period", 30*time.Second, "How often the nodes of a settled network are asked for their peers and chain.")
	flag.DurationVar(&f.stuckAfter, "rollout-stuck-after", controller.DefaultStuckAfter, "How long a node's pod may wait in ImagePullBackOff, ErrImagePull or CrashLoopBackOff before its network is Degraded (RolloutStuck).")
	flag.StringVar(&f.rpcAllowIP, "rpc-allow-ip", "", "The nodes' -rpcallowip, e.g. the pod network's CIDR; empty: the chart's default, any source, narrowed by the NetworkPolicy.")
	flag.StringVar(&f.operatorNamespace, "operator-namespace", os.Getenv("POD_NAMESPACE"), "The operator's namespace, whose pods the nodes' NetworkPolicy admits to RPC; empty: any namespace.")
	flag.StringVar(&f.defaultImage, "default-image", os.Getenv(bitcoinv1alpha1.RelatedImageEnvVar), "The Bitcoin Core image of networks created without spec.image; empty: "+bitcoinv1alpha1.DefaultImage+". Defaults to $"+bitcoinv1alpha1.RelatedImageEnvVar+".")
	flag.StringVar(&f.operatorPodLabels, "operator-pod-labels", "app.kubernetes.io/name=bitcoin-operator", "Labels of the operator's pods (k=v,...), which the nodes' NetworkPolicy admits to RPC.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(f); err != nil {
		ctrl.Log.WithName("setup").Error(err, "Operator failed")
		os.Exit(1)
	}
}

// metricsOptions serves the metrics as current kubebuilder projects do: over HTTPS, to
// callers the API server authenticates (TokenReview) and authorizes for get on the
// non-resource URL /metrics (SubjectAccessReview), e.g. with the metrics-reader
// ClusterRole.
func metricsOptions(f flags) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.metricsSecure, CertDir: f.metricsCertPath}
	if !f.enableHTTP2 {
		opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if f.metricsSecure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}

func run(f flags) error {
	soft, err := setMemoryLimit()
	if err != nil {
		return err
	}
	if soft > 0 {
		ctrl.Log.WithName("setup").Info("Keeping the heap under a soft memory limit", "bytes", soft)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	ctx := ctrl.SetupSignalHandler()
	// The manager needs the API server from its creation on (it maps the cached kinds).
	if err := waitForAPIServer(ctx, cfg); err != nil {
		return err
	}

	lock, err := leaderLock(cfg, f)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  controller.NewScheme(),
		Metrics:                 metricsOptions(f),
		HealthProbeBindAddress:  f.probeAddr,
		PprofBindAddress:        f.pprofAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: f.leaderNamespace,
		// nil: controller-runtime's own, whose identity changes with every start.
		LeaderElectionResourceLockInterface: lock,
		// A new leader takes over at once when the old one stops cleanly, and within
		// the lease duration (plus a retry period) when it crashes. See docs/reliability.md.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &f.leaseDuration,
		RenewDeadline:                 &f.renewDeadline,
		RetryPeriod:                   &f.retryPeriod,
		GracefulShutdownTimeout:       &f.shutdownGrace,
		Cache:                         controller.CacheOptions(os.Getenv("WATCH_NAMESPACE")),
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	podLabels, err := labels.ConvertSelectorToLabelsMap(f.operatorPodLabels)
	if err != nil {
		return fmt.Errorf("invalid --operator-pod-labels: %w", err)
	}
	if f.maxNodes < 0 || f.maxNodes > math.MaxInt32 {
		return fmt.Errorf("invalid --max-nodes-per-network %d: it must be 0 (no cap) or a number of nodes", f.maxNodes)
	}
	opts := controller.Options{
		MaxNodesPerNetwork:      int32(f.maxNodes),
		MaxConcurrentReconciles: f.concurrency,
		PeerPeriod:              f.peerPeriod,
		StuckAfter:              f.stuckAfter,
		RPCAllowIP:              f.rpcAllowIP,
		DefaultImage:            f.defaultImage,
		OperatorNamespace:       f.operatorNamespace,
		OperatorPodLabels:       podLabels,
	}
	if os.Getenv(controller.OperatorConditionEnvVar) != "" { // run by OLM
		if opts.Upgradeable, err = controller.NewUpgradeableCondition(mgr); err != nil {
			return fmt.Errorf("failed to find the operator's OperatorCondition: %w", err)
		}
	}
	if err := controller.Setup(ctx, mgr, opts); err != nil {
		return fmt.Errorf("failed to set up the reconcilers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting the operator", "watchNamespace", os.Getenv("WATCH_NAMESPACE"))
	return mgr.Start(ctx)
}

// waitForAPIServer returns once the API server answers /readyz. Started while the API
// server is away (a kubelet restarts the operator after it lost the Lease in an
// outage), the caches' reflectors would fail and back off for up to a minute
// (client-go's reflector backoff reaches [30 s, 60 s)), and keep the operator idle
// that long after the API server is back. Asked every second, the operator starts
// within about a second of the API server's return instead.
func waitForAPIServer(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return err
	}
	log := ctrl.Log.WithName("setup")
	for logged := false; ; {
		ask, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ask).Error()
		cancel()
		if err == nil {
			return nil
		}
		if !logged {
			log.Info("Waiting for the API server to be ready", "reason", err.Error())
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// leaderLock returns the leader election Lease with the replica's stable identity, or
// nil for controller-runtime's default. A candidate waits a whole lease duration
// after it first sees a Lease held by another identity; with the pod's name as its
// identity, an operator restarted by the kubelet after an API server outage sees its
// own Lease and renews it at once, instead of waiting out the one it held.
func leaderLock(cfg *rest.Config, f flags) (resourcelock.Interface, error) {
	namespace := cmp.Or(f.leaderNamespace, f.operatorNamespace)
	if !f.leaderElect || f.leaderIdentity == "" || namespace == "" {
		return nil, nil
	}
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	// One hung request must not cost the Lease: as controller-runtime does.
	cfg.Timeout = max(f.renewDeadline/2, time.Second)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return resourcelock.New(resourcelock.LeasesResourceLock, namespace, leaderElectionID,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: f.leaderIdentity})
}

package controller

import (
	"cmp"
	"context"
	"time"

	"github.com/operator-framework/operator-lib/conditions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// Options tune the reconcilers.
type Options struct {
	// MaxConcurrentReconciles is how many networks each reconciler works on at once.
	MaxConcurrentReconciles int
	// PeerPeriod is how often the nodes of a settled network are asked for their
	// peers and chain; 0 means 30 s.
	PeerPeriod time.Duration
	// RPCAllowIP is the nodes' -rpcallowip; empty keeps the chart's default.
	RPCAllowIP string
	// OperatorNamespace and OperatorPodLabels select the operator's own pods, which
	// the nodes' NetworkPolicy admits to RPC. Without labels it admits no RPC client;
	// without a namespace, the labelled pods of every namespace.
	OperatorNamespace string
	OperatorPodLabels map[string]string
	// DefaultImage is the Bitcoin Core image of networks created without spec.image;
	// empty means bitcoinv1alpha1.DefaultImage.
	DefaultImage string
	// MaxNodesPerNetwork caps spec.nodes for the cluster's administrator: a network
	// above it is Degraded (TooManyNodes) and keeps its objects as they are. 0 means no
	// cap beyond the API's maximum.
	MaxNodesPerNetwork int32
	// StuckAfter is how long a pod may wait in ImagePullBackOff, ErrImagePull or
	// CrashLoopBackOff before its network is Degraded with RolloutStuck; 0 means
	// DefaultStuckAfter. RepairPeriod is the least time between two stuck pods
	// deleted in one network; 0 means DefaultRepairPeriod.
	StuckAfter, RepairPeriod time.Duration
	// Upgradeable, when OLM runs the operator, is its OperatorCondition's Upgradeable
	// condition, kept by the UpgradeableReconciler; nil otherwise.
	Upgradeable conditions.Condition
}

// Setup registers the cache indexes and every reconciler with the manager. The
// operator's main and the tests wire the operator through it alike.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	renderer, err := render.NewRenderer()
	if err != nil {
		return err
	}
	if err := setupIndexes(ctx, mgr); err != nil {
		return err
	}
	// The core/v1 recorder, not events.k8s.io's: that one folds events of the same
	// reason into a series that keeps the first message ("Scaled from 3 to 5" would
	// stand for every later scaling) and rewrites it while idle.
	recorder := mgr.GetEventRecorderFor("bitcoin-operator") //nolint:staticcheck
	observations := newObservations()
	// The network's status writers share one pacer (status_writer.go).
	pacer := &statusPacer{}
	// The reconcilers' writes count in the operator's metrics.
	c := metrics.CountWrites(mgr.GetClient())
	network := &NetworkReconciler{
		Client:       c,
		APIReader:    mgr.GetAPIReader(),
		Renderer:     renderer,
		Recorder:     recorder,
		Settings:     render.Settings{RPCAllowIP: opts.RPCAllowIP, RPCFrom: opts.rpcClients()},
		Observations: observations,
		status:       newStatusWriter(c, networkStatusOwner, pacer),
		DefaultImage: cmp.Or(opts.DefaultImage, bitcoinv1alpha1.DefaultImage),
		MaxNodes:     opts.MaxNodesPerNetwork,
	}
	if err := network.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return err
	}
	status := &StatusReconciler{
		Client:       c,
		Recorder:     recorder,
		Observations: observations,
		StuckAfter:   cmp.Or(opts.StuckAfter, DefaultStuckAfter),
		RepairPeriod: cmp.Or(opts.RepairPeriod, DefaultRepairPeriod),
		status:       newStatusWriter(c, nodeStatusOwner, pacer),
		now:          time.Now,
	}
	if err := status.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return err
	}
	peers := &PeerReconciler{
		Client:       c,
		APIReader:    mgr.GetAPIReader(),
		Renderer:     renderer,
		Recorder:     recorder,
		Observations: observations,
		Period:       cmp.Or(opts.PeerPeriod, 30*time.Second),
		rounds:       newPeerRounds(),
	}
	if err := peers.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return err
	}
	if opts.Upgradeable == nil {
		return nil
	}
	return (&UpgradeableReconciler{Client: c, Condition: opts.Upgradeable}).SetupWithManager(mgr, opts.controllerOptions())
}

func (o Options) controllerOptions() controller.Options {
	return controller.Options{MaxConcurrentReconciles: max(o.MaxConcurrentReconciles, 1)}
}

// rpcClients is the NetworkPolicyPeer, as chart values, of the operator's pods.
func (o Options) rpcClients() []map[string]any {
	if len(o.OperatorPodLabels) == 0 {
		return nil
	}
	labels := map[string]any{}
	for k, v := range o.OperatorPodLabels {
		labels[k] = v
	}
	namespaces := map[string]any{} // every namespace
	if o.OperatorNamespace != "" {
		namespaces["matchLabels"] = map[string]any{"kubernetes.io/metadata.name": o.OperatorNamespace}
	}
	return []map[string]any{{"namespaceSelector": namespaces, "podSelector": map[string]any{"matchLabels": labels}}}
}

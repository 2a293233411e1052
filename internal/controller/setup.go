// Package controller holds the operator's reconcilers: the network reconciler applies
// what the chart renders for a network, the status reconciler reports its nodes, and
// under OLM the upgradeable reconciler holds operator upgrades while networks roll.
package controller

import (
	"context"

	"github.com/operator-framework/operator-lib/conditions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// Options tune the reconcilers.
type Options struct {
	// MaxConcurrentReconciles is how many networks each reconciler works on at once.
	MaxConcurrentReconciles int
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
	network := &NetworkReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Renderer:  renderer,
		// The core/v1 recorder, not events.k8s.io's: that one folds events of the same
		// reason into a series that keeps the first message ("Scaled from 3 to 5"
		// would stand for every later scaling) and rewrites it while idle.
		Recorder: mgr.GetEventRecorderFor("bitcoin-operator"), //nolint:staticcheck

	}
	if err := network.SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return err
	}
	if err := (&StatusReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr, opts.controllerOptions()); err != nil {
		return err
	}
	if opts.Upgradeable == nil {
		return nil
	}
	return (&UpgradeableReconciler{Client: mgr.GetClient(), Condition: opts.Upgradeable}).SetupWithManager(mgr, opts.controllerOptions())
}

func (o Options) controllerOptions() controller.Options {
	return controller.Options{MaxConcurrentReconciles: max(o.MaxConcurrentReconciles, 1)}
}

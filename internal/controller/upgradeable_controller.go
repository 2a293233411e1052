package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apiv2 "github.com/operator-framework/api/pkg/operators/v2"
	"github.com/operator-framework/operator-lib/conditions"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Reasons of the Upgradeable condition.
const (
	ReasonNetworksRolling = "NetworksRolling"
	ReasonNetworksSettled = "NetworksSettled"
)

// OperatorConditionEnvVar names the operator's OperatorCondition. OLM sets it in the
// Deployment of every CSV it installs; without it the operator is not run by OLM.
const OperatorConditionEnvVar = "OPERATOR_CONDITION_NAME"

// UpgradeableReconciler tells OLM, through the Upgradeable condition of the operator's
// OperatorCondition, whether to hold an upgrade of the operator: False while any
// network's StatefulSet is rolling its pods, so that a new operator version does not
// take over a network halfway through a change the old one started; True once every
// network has settled. OLM holds an approved upgrade while it is False.
//
// The whole cluster's state is one answer, so every event maps to one request.
type UpgradeableReconciler struct {
	// Client reads StatefulSets from the manager's cache.
	client.Client
	// Condition reads and writes the Upgradeable condition (operator-lib's conditions).
	Condition conditions.Condition

	// known is the condition as last read or written, so that the StatefulSet events
	// that change nothing cost no request. Reconciles never run at once.
	known *metav1.Condition
}

// No RBAC marker: OLM grants the operator's ServiceAccount get, update and patch on
// its own OperatorCondition, by name, with a Role it creates beside it. A ClusterRole
// rule here would let the operator edit every operator's condition in the cluster.

// NewUpgradeableCondition returns the Upgradeable condition of the OperatorCondition
// that OLM created for the running operator, as operator-lib finds it in a pod: by the
// name in OPERATOR_CONDITION_NAME and the namespace of the pod's ServiceAccount. It
// reads through an uncached client: the operator needs this one object, and a cache
// would watch every OperatorCondition it may read.
func NewUpgradeableCondition(mgr ctrl.Manager) (conditions.Condition, error) {
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, err
	}
	return conditions.InClusterFactory{Client: c}.NewCondition(apiv2.ConditionType(apiv2.Upgradeable))
}

// upgradeableRequest is the one request of the reconciler.
var upgradeableRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "upgradeable"}}

// Reconcile compares the condition with what the StatefulSets show, and writes it
// only when that differs.
func (r *UpgradeableReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	var list appsv1.StatefulSetList
	if err := r.List(ctx, &list); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list StatefulSets: %w", err)
	}
	want := upgradeable(list.Items)

	if r.known == nil {
		cur, err := r.Condition.Get(ctx)
		var apiErr apierrors.APIStatus
		if errors.As(err, &apiErr) {
			return ctrl.Result{}, fmt.Errorf("failed to read the OperatorCondition: %w", err)
		}
		// Any other error is operator-lib's "conditionType not found": not set yet.
		if err == nil {
			r.known = cur
		}
	}
	if k := r.known; k != nil && k.Status == want.Status && k.Reason == want.Reason && k.Message == want.Message {
		return ctrl.Result{}, nil
	}
	log.FromContext(ctx).Info("Setting Upgradeable", "status", want.Status, "reason", want.Reason, "message", want.Message)
	r.known = nil // unknown until the write succeeds
	if err := r.Condition.Set(ctx, want.Status, conditions.WithReason(want.Reason), conditions.WithMessage(want.Message)); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to set Upgradeable on the OperatorCondition: %w", err)
	}
	r.known = &want
	return ctrl.Result{}, nil
}

// upgradeable is the Upgradeable condition for the networks' StatefulSets: False,
// naming them, while any is rolling its pods. Names are sorted, so that the message is
// the same for the same state and an unchanged state is never written again.
func upgradeable(sets []appsv1.StatefulSet) metav1.Condition {
	var rolling []string
	for i := range sets {
		if network, ok := controllingNetwork(&sets[i]); ok && isRolling(&sets[i]) {
			rolling = append(rolling, sets[i].Namespace+"/"+network)
		}
	}
	if len(rolling) == 0 {
		return metav1.Condition{Type: apiv2.Upgradeable, Status: metav1.ConditionTrue,
			Reason: ReasonNetworksSettled, Message: "No network is rolling its pods"}
	}
	slices.Sort(rolling)
	message := fmt.Sprintf("Network %s is rolling its pods", rolling[0])
	if len(rolling) > 1 {
		message = fmt.Sprintf("%d networks are rolling their pods: %s", len(rolling), strings.Join(rolling, ", "))
	}
	return metav1.Condition{Type: apiv2.Upgradeable, Status: metav1.ConditionFalse,
		Reason: ReasonNetworksRolling, Message: message + "; the operator upgrade waits until it is done"}
}

// isRolling tells whether a StatefulSet is moving its pods to a new revision: its
// controller has not seen its spec yet, or some pods are not at the update revision.
// The StatefulSet controller moves currentRevision to updateRevision only once every
// pod is updated and ready, so a pod that is being replaced counts until it is Ready.
func isRolling(sts *appsv1.StatefulSet) bool {
	s := sts.Status
	return s.ObservedGeneration < sts.Generation || s.CurrentRevision != s.UpdateRevision
}

// SetupWithManager runs the reconciler once at start, for a cluster without networks,
// and again whenever a network's StatefulSet changes.
func (r *UpgradeableReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	opts.MaxConcurrentReconciles = 1 // one request: nothing to do at once
	return ctrl.NewControllerManagedBy(mgr).
		Named("upgradeable").
		WithOptions(opts).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(
			func(_ context.Context, sts client.Object) []reconcile.Request {
				if _, ok := controllingNetwork(sts); !ok {
					return nil
				}
				return []reconcile.Request{upgradeableRequest}
			})).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(upgradeableRequest)
			return nil
		})).
		Complete(r)
}

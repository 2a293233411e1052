package controller

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// StatusReconciler reports a network's nodes from its pods and from what the peer
// reconciler heard them say: status.nodes, readyNodes, replicas, selector and the
// Available condition. It never touches the spec. It also watches for a rollout that
// cannot finish (status_rollout.go): it hands stuck pods to the network reconciler,
// which owns Degraded, and deletes a stuck pod the fixed spec would replace.
type StatusReconciler struct {
	client.Client
	Recorder record.EventRecorder
	// Observations hold each node's peers and blocks, as the peer reconciler last
	// heard them; the status reconciler adds the stuck pods.
	Observations *observations
	// StuckAfter is how long a pod may wait in ImagePullBackOff, ErrImagePull or
	// CrashLoopBackOff before the rollout counts as stuck.
	StuckAfter time.Duration
	// RepairPeriod is the least time between two stuck pods deleted in one network.
	RepairPeriod time.Duration

	status *statusWriter
	// repairs remembers when each network last had a stuck pod deleted.
	repairs networkMemory[time.Time]
	// now is time.Now, or a test's clock.
	now func() time.Time
}

// +kubebuilder:rbac:groups=core,resources=pods,verbs=get;list;watch;delete

// Reconcile observes one network's pods and writes what changed.
func (r *StatusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	network, err := liveNetwork(ctx, r.Client, req.NamespacedName)
	if network == nil || err != nil {
		if err == nil {
			r.status.forget(req.NamespacedName)
			r.repairs.forget(req.NamespacedName)
			metrics.ForgetNodes(metricsNetwork(req.NamespacedName))
		}
		return ctrl.Result{}, err
	}
	sts, err := statefulSetOf(ctx, r.Client, network)
	if err != nil {
		return ctrl.Result{}, err
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(network.Namespace),
		client.MatchingFields{indexPodNetwork: network.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list the network's pods: %w", err)
	}

	status := observeNodes(network, sts, pods.Items)
	status.addObservations(network, r.Observations)
	status.addRound(network, r.Observations)
	reportNodeMetrics(network, status)
	wrote, wait, err := r.status.write(ctx, network, status)
	if wrote {
		log.FromContext(ctx).V(1).Info("Updated node status", "readyNodes", status.ReadyNodes, "replicas", status.Replicas)
	}
	if err != nil || sts == nil {
		return ctrl.Result{RequeueAfter: wait}, err
	}
	result, err := r.checkRollout(ctx, network, sts, pods.Items)
	if wait > 0 && (result.RequeueAfter == 0 || wait < result.RequeueAfter) {
		result.RequeueAfter = wait
	}
	return result, err
}

// checkRollout reports the pods stuck in the rollout to the network reconciler and
// repairs what the spec fixed. It looks again when the next waiting pod would turn
// stuck, or when the next repair is allowed.
func (r *StatusReconciler) checkRollout(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, sts *appsv1.StatefulSet, pods []corev1.Pod) (ctrl.Result, error) {
	stuck, recheck := stuckPods(sts, pods, r.now(), r.StuckAfter)
	r.Observations.setRolloutStuck(network, rolloutStuckMessage(stuck, r.StuckAfter))
	wait, err := r.repairRollout(ctx, network, sts, stuck)
	if wait > 0 && (recheck == 0 || wait < recheck) {
		recheck = wait
	}
	return ctrl.Result{RequeueAfter: recheck}, err
}

// statefulSetOf returns the StatefulSet the network controls, or nil before it exists.
func statefulSetOf(ctx context.Context, c client.Reader, network *bitcoinv1alpha1.BitcoinNetwork) (*appsv1.StatefulSet, error) {
	var list appsv1.StatefulSetList
	if err := c.List(ctx, &list, client.InNamespace(network.Namespace),
		client.MatchingFields{indexOwnerNetwork: network.Name}); err != nil {
		return nil, fmt.Errorf("failed to list the network's StatefulSet: %w", err)
	}
	for i := range list.Items {
		// The UID check skips the StatefulSet of an earlier network of the same name
		// that the garbage collector has not removed yet.
		if sts := &list.Items[i]; metav1.IsControlledBy(sts, network) {
			return sts, nil
		}
	}
	return nil, nil
}

// SetupWithManager watches networks, their StatefulSets and their pods.
func (r *StatusReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("bitcoinnetwork-status").
		WithOptions(opts).
		// Spec changes move Available; status writes are this reconciler's own.
		For(&bitcoinv1alpha1.BitcoinNetwork{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// The StatefulSet gives the selector and the Service name; a new update
		// revision (a fixed spec, in the StatefulSet's status) may make a stuck pod
		// repairable.
		Owns(&appsv1.StatefulSet{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, updateRevisionChanged))).
		// Pod readiness and IPs are what this reconciler reports: watch them instead of
		// waiting for a resync.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(networkOfPod)).
		// Peers and blocks come from the peer reconciler's RPC calls.
		WatchesRawSource(observed(r.Observations.nodes)).
		Complete(r)
}

// networkOfPod maps a pod to its network by the chart's instance label.
func networkOfPod(_ context.Context, pod client.Object) []reconcile.Request {
	name := pod.GetLabels()[render.LabelInstance]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: name}}}
}

// updateRevisionChanged passes StatefulSet updates whose controller moved the update
// revision, which it writes in the status after the spec changed.
var updateRevisionChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*appsv1.StatefulSet)
		cur, okCur := e.ObjectNew.(*appsv1.StatefulSet)
		return !okOld || !okCur || old.Status.UpdateRevision != cur.Status.UpdateRevision ||
			old.Status.ObservedGeneration != cur.Status.ObservedGeneration
	},
}

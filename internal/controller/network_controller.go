package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// NetworkReconciler makes a network's StatefulSet, headless Service and NetworkPolicy
// what the chart renders for its spec and credentials, and reports in the Degraded
// condition what keeps it from that.
type NetworkReconciler struct {
	client.Client
	// APIReader reads Secrets whole; the cache holds their metadata only.
	APIReader client.Reader
	Renderer  *render.Renderer
	Recorder  record.EventRecorder
	// Settings are the chart values that come from the operator (the RPC clients the
	// NetworkPolicy admits, -rpcallowip); RPCAuth is set per network.
	Settings     render.Settings
	Observations *observations
	// DefaultImage is what a network without spec.image runs when first reconciled.
	DefaultImage string
	// MaxNodes caps spec.nodes (--max-nodes-per-network); 0: no cap beyond the API's.
	MaxNodes int32

	status *statusWriter
	// rpcAuths remembers the rpcauth entry last applied to each network, so that a
	// reconcile that runs before the cache shows it keeps it instead of salting anew.
	rpcAuths networkMemory[bitcoin.RPCAuth]
	// creations remembers the children created in the last cacheLag, so that a
	// reconcile before the cache shows them neither sends nor announces them again.
	creations creations
}

// +kubebuilder:rbac:groups=bitcoin.bitcoinops.io,resources=bitcoinnetworks,verbs=get;list;watch
// +kubebuilder:rbac:groups=bitcoin.bitcoinops.io,resources=bitcoinnetworks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=bitcoin.bitcoinops.io,resources=bitcoinnetworks/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=core,resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=core,resources=events,verbs=create;patch

// Reconcile brings one network's children to its spec.
func (r *NetworkReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	network, err := liveNetwork(ctx, r.Client, req.NamespacedName)
	if network == nil || err != nil {
		if err == nil {
			log.FromContext(ctx).V(1).Info("Network is gone or being deleted; leaving its objects to the garbage collector")
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	logger := log.FromContext(ctx).WithValues("generation", network.Generation, "resourceVersion", network.ResourceVersion)
	ctx = log.IntoContext(ctx, logger)
	logger.V(1).Info("Reconciling network")

	var done changes
	defer r.announce(network, &done)
	creds, credsProblem, err := r.ensureCredentials(ctx, network, &done)
	if err != nil {
		return ctrl.Result{}, err
	}
	keyProblem, err := r.ensureMiningKey(ctx, network, &done)
	if err != nil {
		return ctrl.Result{}, err
	}
	if credsProblem == nil {
		credsProblem = keyProblem
	}
	applyErr := r.applyChildren(ctx, network, creds, &done)
	wait, statusErr := r.updateStatus(ctx, network, credsProblem, applyErr)
	if done.awaiting {
		wait = max(wait, cacheLag) // then the child is in the cache, or applied again
	}
	if wait > 0 && statusErr == nil && errors.Is(applyErr, reconcile.TerminalError(nil)) {
		// The write that tells the user (TooManyNodes, ApplyFailed) was held back: a
		// terminal error is never retried and drops RequeueAfter, so come back for it.
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{RequeueAfter: wait}, errors.Join(applyErr, statusErr)
}

// forget drops what the reconciler remembers of a network that is gone.
func (r *NetworkReconciler) forget(key types.NamespacedName) {
	r.rpcAuths.forget(key)
	r.creations.forget(key)
	r.status.forget(key)
}

// applyChildren renders the chart for the network and applies what changed.
func (r *NetworkReconciler) applyChildren(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, creds *credentials, done *changes) error {
	if err := checkNodeCap(network, r.MaxNodes); err != nil {
		return reconcile.TerminalError(err)
	}
	rpcAuth, err := r.rpcAuth(ctx, network, creds)
	if err != nil {
		return err
	}
	settings := r.Settings
	settings.RPCAuth = string(rpcAuth)
	withImage := network.DeepCopy()
	withImage.Spec.Image = nodeImage(network, r.DefaultImage)
	objs, err := r.Renderer.Render(withImage, settings)
	if err != nil {
		return reconcile.TerminalError(err)
	}
	owner := controllerReference(network)
	objs.Service.WithOwnerReferences(owner)
	objs.StatefulSet.WithOwnerReferences(owner)

	name := *objs.Service.Name
	result, err := applyIfChanged(ctx, r.Client, keyOf(network, name), &corev1.Service{}, objs.Service, corev1ac.ExtractService,
		r.justCreated(network, "Service", name))
	if err != nil {
		return fmt.Errorf("failed to apply Service %s: %w", name, err)
	}
	r.applied(ctx, network, done, "Service", name, result)

	if np := objs.NetworkPolicy; np != nil {
		np.WithOwnerReferences(owner)
		name = *np.Name
		result, err = applyIfChanged(ctx, r.Client, keyOf(network, name), &networkingv1.NetworkPolicy{}, np, networkingv1ac.ExtractNetworkPolicy,
			r.justCreated(network, "NetworkPolicy", name))
		if err != nil {
			return fmt.Errorf("failed to apply NetworkPolicy %s: %w", name, err)
		}
		r.applied(ctx, network, done, "NetworkPolicy", name, result)
	}

	sts := &appsv1.StatefulSet{}
	name = *objs.StatefulSet.Name
	result, err = applyIfChanged(ctx, r.Client, keyOf(network, name), sts, objs.StatefulSet, appsv1ac.ExtractStatefulSet,
		r.justCreated(network, "StatefulSet", name))
	if err != nil {
		return fmt.Errorf("failed to apply StatefulSet %s: %w", name, err)
	}
	r.rpcAuths.store(network, rpcAuth)
	if result == updated && sts.Spec.Replicas != nil && *sts.Spec.Replicas != network.Spec.Nodes {
		log.FromContext(ctx).Info("Scaled", "statefulSet", sts.Name, "from", *sts.Spec.Replicas, "to", network.Spec.Nodes)
		r.Recorder.Eventf(network, corev1.EventTypeNormal, "Scaled",
			"Scaled StatefulSet %s from %d to %d nodes", sts.Name, *sts.Spec.Replicas, network.Spec.Nodes)
		return nil
	}
	r.applied(ctx, network, done, "StatefulSet", name, result)
	return nil
}

// justCreated tells whether the reconciler created the child less than cacheLag ago.
func (r *NetworkReconciler) justCreated(network *bitcoinv1alpha1.BitcoinNetwork, kind, name string) bool {
	return r.creations.recent(network, kind, name, time.Now())
}

// applied records the result of applying a child: in the reconcile's changes and, for
// a child it created, in what the reconciler remembers (see justCreated).
func (r *NetworkReconciler) applied(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, done *changes, kind, name string, result applyResult) {
	if result == created {
		r.creations.record(network, kind, name, time.Now())
	}
	done.applied(ctx, kind, name, result)
}

// rpcAuth returns the nodes' rpcauth entry for the credentials. The entry the nodes
// run with is kept as long as it admits the credentials: a new salt would change the
// pod template and roll every node for nothing. Without usable credentials (a Secret
// the user must fix), the nodes keep what they have.
func (r *NetworkReconciler) rpcAuth(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, creds *credentials) (bitcoin.RPCAuth, error) {
	var candidates []bitcoin.RPCAuth
	if last, ok := r.rpcAuths.load(network); ok {
		candidates = append(candidates, last)
	}
	sts, err := statefulSetOf(ctx, r.Client, network)
	if err != nil {
		return "", err
	}
	if sts != nil {
		candidates = append(candidates, appliedRPCAuth(sts))
	}
	if creds == nil {
		if len(candidates) == 0 {
			return "", nil
		}
		return candidates[0], nil
	}
	for _, c := range candidates {
		if c.Matches(creds.user, creds.password) {
			return c, nil
		}
	}
	return bitcoin.NewRPCAuth(creds.user, creds.password)
}

// appliedRPCAuth returns the rpcauth entry in a StatefulSet's bitcoind arguments.
func appliedRPCAuth(sts *appsv1.StatefulSet) bitcoin.RPCAuth {
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, arg := range c.Args {
			if entry, ok := strings.CutPrefix(arg, "-rpcauth="); ok {
				return bitcoin.RPCAuth(entry)
			}
		}
	}
	return ""
}

// changes collects what one reconcile created and updated, to say it in one event of
// each kind: a network coming up is one Created event, not one per object (events are
// writes too, and a fleet coming up pays for each).
type changes struct {
	created, updated []string
	// awaiting: a child created moments ago is not in the cache yet (awaited); the
	// reconcile comes back once it should be.
	awaiting bool
}

// create records an object the reconcile created, with what the event should say of it.
func (c *changes) create(ctx context.Context, kind, name, detail string) {
	log.FromContext(ctx).Info("Created", "kind", kind, "name", name)
	c.created = append(c.created, strings.TrimSpace(kind+" "+name+" "+detail))
}

// applied records the result of applying a child.
func (c *changes) applied(ctx context.Context, kind, name string, result applyResult) {
	switch result {
	case created:
		c.create(ctx, kind, name, "")
	case updated:
		log.FromContext(ctx).Info("Updated", "kind", kind, "name", name)
		c.updated = append(c.updated, kind+" "+name)
	case awaited:
		c.awaiting = true
	}
}

// announce sends the reconcile's changes as events, even when it failed part way.
func (r *NetworkReconciler) announce(network *bitcoinv1alpha1.BitcoinNetwork, c *changes) {
	if len(c.created) > 0 {
		r.Recorder.Event(network, corev1.EventTypeNormal, "Created", "Created "+strings.Join(c.created, "; "))
	}
	if len(c.updated) > 0 {
		r.Recorder.Event(network, corev1.EventTypeNormal, "Updated", "Updated "+strings.Join(c.updated, "; ")+" to match the network's spec")
	}
}

// networkStatus is the part of the status the network reconciler owns.
type networkStatus struct {
	ObservedGeneration int64              `json:"observedGeneration"`
	SecretName         string             `json:"secretName"`
	Image              string             `json:"image,omitempty"`
	Conditions         []metav1.Condition `json:"conditions"`
}

func (s networkStatus) changedFrom(network *bitcoinv1alpha1.BitcoinNetwork) bool {
	return network.Status.ObservedGeneration != s.ObservedGeneration || network.Status.SecretName != s.SecretName ||
		network.Status.Image != s.Image || conditionsChanged(network, s.Conditions)
}

// maxHold: the network reconciler's part follows the spec, which users wait for.
func (s networkStatus) maxHold(*bitcoinv1alpha1.BitcoinNetwork) time.Duration { return 0 }

// updateStatus writes the network reconciler's part of the status if it changed:
// Degraded says what keeps the network from its spec, observedGeneration moves on once
// the children were applied for the current spec, and secretName says where the
// credentials are. A Degraded that turns True is also an event. It returns how long
// to wait when the status writer held the write back.
func (r *NetworkReconciler) updateStatus(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, credsProblem *problem, applyErr error) (time.Duration, error) {
	if applyErr != nil && !needsUser(applyErr) {
		return 0, nil // a transient failure: the reconcile is retried, and nothing needs the user yet
	}
	observed := network.Generation
	var degraded metav1.Condition
	authFailure := r.Observations.authFailure(network)
	rolloutStuck := r.Observations.rolloutStuck(network)
	var tooMany *tooManyNodes
	switch {
	case errors.As(applyErr, &tooMany):
		observed = network.Status.ObservedGeneration
		degraded = condition(network, bitcoinv1alpha1.ConditionDegraded, metav1.ConditionTrue, reasonTooManyNodes, tooMany.Error())
	case applyErr != nil:
		observed = network.Status.ObservedGeneration
		degraded = condition(network, bitcoinv1alpha1.ConditionDegraded, metav1.ConditionTrue, "ApplyFailed", userMessage(applyErr))
	case credsProblem != nil:
		degraded = condition(network, bitcoinv1alpha1.ConditionDegraded, metav1.ConditionTrue, credsProblem.reason, credsProblem.message)
	case rolloutStuck != "":
		degraded = condition(network, bitcoinv1alpha1.ConditionDegraded, metav1.ConditionTrue, "RolloutStuck", rolloutStuck)
	case authFailure != "":
		degraded = condition(network, bitcoinv1alpha1.ConditionDegraded, metav1.ConditionTrue, "RPCAuthenticationFailed", authFailure)
	default:
		degraded = condition(network, bitcoinv1alpha1.ConditionDegraded, metav1.ConditionFalse, "Reconciled",
			"The network's objects match its spec")
	}
	newlyDegraded := degraded.Status == metav1.ConditionTrue && conditionChanged(network, degraded)
	status := networkStatus{ObservedGeneration: observed, SecretName: secretName(network), Conditions: []metav1.Condition{degraded}}
	if applyErr == nil {
		status.Image = nodeImage(network, r.DefaultImage)
	} else {
		status.Image = network.Status.Image // the nodes did not get a new one
	}
	wrote, wait, err := r.status.write(ctx, network, status)
	if wrote && newlyDegraded {
		r.Recorder.Event(network, corev1.EventTypeWarning, degraded.Reason, degraded.Message)
	}
	return wait, err
}

// SetupWithManager watches networks, the objects they own, the Secrets that hold
// their credentials, and what the peer reconciler learns about those credentials.
func (r *NetworkReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("bitcoinnetwork").
		WithOptions(opts).
		// Only spec changes: the status the reconcilers write themselves is no reason
		// to render again.
		For(&bitcoinv1alpha1.BitcoinNetwork{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A StatefulSet's status changes with every pod; only its spec and metadata
		// are ours to restore.
		Owns(&appsv1.StatefulSet{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.NetworkPolicy{}).
		// Users' Secrets carry no label to select on: watch every Secret's metadata
		// only, and map a Secret to the networks whose credentials it holds.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(networksOfSecret(r.Client))).
		WatchesRawSource(observed(r.Observations.auth)).
		WatchesRawSource(observed(r.Observations.rollout)).
		Complete(r)
}

// needsUser tells whether an apply error is one the user must act on (the API server
// refused the objects, or the chart cannot render the spec) rather than a transient
// failure that a retry fixes.
func needsUser(err error) bool {
	return errors.Is(err, reconcile.TerminalError(nil)) || apierrors.IsInvalid(err) ||
		apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err)
}

// userMessage is what the user reads of an error that needs them: without
// controller-runtime's "terminal error: " prefix, which says how the reconcile ends,
// not what to fix.
func userMessage(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		inner := errors.Unwrap(e)
		if errors.Is(e, reconcile.TerminalError(nil)) && inner != nil && !errors.Is(inner, reconcile.TerminalError(nil)) {
			return strings.Replace(err.Error(), e.Error(), inner.Error(), 1)
		}
	}
	return err.Error()
}

func keyOf(network *bitcoinv1alpha1.BitcoinNetwork, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: network.Namespace, Name: name}
}

// nodeImage is the image the network's nodes run: spec.image; without it, the one
// recorded in status when the network was first reconciled; for a new network, the
// operator's default. Recording it keeps an upgraded operator with another default
// from rolling the nodes.
func nodeImage(network *bitcoinv1alpha1.BitcoinNetwork, defaultImage string) string {
	switch {
	case network.Spec.Image != "":
		return network.Spec.Image
	case network.Status.Image != "":
		return network.Status.Image
	}
	return defaultImage
}

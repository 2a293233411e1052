package controller

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	apiv2 "github.com/operator-framework/api/pkg/operators/v2"
	"github.com/operator-framework/operator-lib/conditions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// TestUpgradeableFollowsRollingNetworks runs the upgradeable reconciler alone, as the
// operator's ServiceAccount with only the Role OLM grants it on its OperatorCondition,
// and watching one namespace (as with WATCH_NAMESPACE): envtest has no StatefulSet
// controller, so the test plays it by writing the StatefulSets' status, and the
// other tests' StatefulSets, which never settle here, stay out of sight.
func TestUpgradeableFollowsRollingNetworks(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	alpha := testkit.CreateNetwork(t, k8s, ns, "alpha", 3)
	beta := testkit.CreateNetwork(t, k8s, ns, "beta", 1)
	var alphaSts, betaSts *appsv1.StatefulSet
	g.Eventually(func(g Gomega) {
		alphaSts, betaSts = statefulSet(g, alpha), statefulSet(g, beta)
	}, timeout, interval).Should(Succeed())
	settle(t, betaSts)

	condition := createOperatorCondition(t, "bitcoin-operator.v0.1.0")
	upgradeWrites := &writeCounter{}
	startUpgradeableReconciler(t, ns, condition, upgradeWrites)
	ctx := context.Background()

	testkit.By(t, "a StatefulSet whose controller has not caught up yet is rolling")
	g.Eventually(func(g Gomega) {
		c := upgradeableCondition(g, condition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(ReasonNetworksRolling))
		g.Expect(c.Message).To(HavePrefix(fmt.Sprintf("Network %s/alpha is rolling its pods", ns)))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "once every pod is at the update revision, the upgrade may proceed")
	settle(t, alphaSts)
	g.Eventually(func(g Gomega) {
		c := upgradeableCondition(g, condition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(ReasonNetworksSettled))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "an unchanged answer is not written again")
	runs := reconciles(g, "upgradeable")
	before, _ := upgradeWrites.in(operatorNamespace)
	g.Expect(k8s.Patch(ctx, alphaSts, client.RawPatch(types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"test.bitcoinops.io/touch":"1"}}}`)))).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(reconciles(g, "upgradeable")).To(BeNumerically(">", runs)) }, timeout, interval).Should(Succeed())
	// The reconcile that the touch caused has finished, and with it any write it made.
	count, last := upgradeWrites.in(operatorNamespace)
	g.Expect(count).To(Equal(before), "writes: %v", last)

	testkit.By(t, "two networks rolling at once are both named")
	roll(t, alphaSts, "rev-2")
	roll(t, betaSts, "rev-2")
	g.Eventually(func(g Gomega) {
		c := upgradeableCondition(g, condition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(HavePrefix(fmt.Sprintf("2 networks are rolling their pods: %s/alpha, %s/beta", ns, ns)))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "a deleted network no longer holds the upgrade")
	settle(t, alphaSts)
	g.Expect(k8s.Delete(ctx, beta)).To(Succeed())
	g.Expect(k8s.Delete(ctx, betaSts)).To(Succeed()) // envtest has no garbage collector
	g.Eventually(func(g Gomega) {
		g.Expect(upgradeableCondition(g, condition).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "OLM's own entries in the OperatorCondition stay as they were")
	cur := &apiv2.OperatorCondition{}
	g.Expect(k8s.Get(ctx, condition, cur)).To(Succeed())
	g.Expect(cur.Spec.Deployments).To(Equal([]string{"bitcoin-operator-controller-manager"}))
	g.Expect(cur.Spec.ServiceAccounts).To(Equal([]string{operatorAccount}))
}

func TestIsRolling(t *testing.T) {
	settled := appsv1.StatefulSetStatus{ObservedGeneration: 2, CurrentRevision: "a", UpdateRevision: "a", Replicas: 3, UpdatedReplicas: 3}
	for _, tc := range []struct {
		name    string
		mutate  func(*appsv1.StatefulSetStatus)
		rolling bool
	}{
		{"settled", func(*appsv1.StatefulSetStatus) {}, false},
		{"spec not observed yet", func(s *appsv1.StatefulSetStatus) { s.ObservedGeneration = 1 }, true},
		{"pods moving to a new revision", func(s *appsv1.StatefulSetStatus) { s.UpdateRevision, s.UpdatedReplicas = "b", 1 }, true},
		{"every pod updated, the last not ready yet", func(s *appsv1.StatefulSetStatus) { s.UpdateRevision = "b" }, true},
		{"new and never observed", func(s *appsv1.StatefulSetStatus) { *s = appsv1.StatefulSetStatus{} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: settled}
			tc.mutate(&sts.Status)
			NewWithT(t).Expect(isRolling(sts)).To(Equal(tc.rolling))
		})
	}
}

// createOperatorCondition creates an OperatorCondition in the operator's namespace and
// the Role and RoleBinding that OLM creates with it: get, update and patch on that one
// object for the operator's ServiceAccount.
func createOperatorCondition(t *testing.T, name string) types.NamespacedName {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})
	g.Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
	g.Expect(k8s.Create(ctx, &apiv2.OperatorCondition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: operatorNamespace},
		Spec: apiv2.OperatorConditionSpec{
			Deployments:     []string{"bitcoin-operator-controller-manager"},
			ServiceAccounts: []string{operatorAccount},
		},
	})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: operatorNamespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"operators.coreos.com"}, Resources: []string{"operatorconditions"},
			ResourceNames: []string{name}, Verbs: []string{"get", "update", "patch"}}},
	})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: operatorNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: operatorAccount}},
	})).To(Succeed())
	return types.NamespacedName{Namespace: operatorNamespace, Name: name}
}

// startUpgradeableReconciler runs a manager with only the upgradeable reconciler,
// watching one namespace, as the operator's ServiceAccount.
func startUpgradeableReconciler(t *testing.T, namespace string, condition types.NamespacedName, w *writeCounter) {
	t.Helper()
	g := NewWithT(t)
	cfg := impersonating(operatorAccount)
	cfg.WrapTransport = w.wrap
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 NewScheme(),
		Cache:                  CacheOptions(namespace),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	g.Expect(err).NotTo(HaveOccurred())
	direct, err := client.New(cfg, client.Options{Scheme: NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	r := &UpgradeableReconciler{Client: mgr.GetClient(), Condition: &namedCondition{client: direct, key: condition}}
	g.Expect(r.SetupWithManager(mgr, Options{}.controllerOptions())).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("upgradeable manager stopped: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// namedCondition stands for the condition that operator-lib's InClusterFactory finds
// in a pod, by OPERATOR_CONDITION_NAME and the ServiceAccount's namespace file, which
// a test process has not. It reads and writes the same way: a Get, and an Update of
// spec.conditions. test/olm runs the operator with operator-lib's own, under OLM.
type namedCondition struct {
	client client.Client
	key    types.NamespacedName
}

var _ conditions.Condition = &namedCondition{}

func (c *namedCondition) Get(ctx context.Context) (*metav1.Condition, error) {
	oc := &apiv2.OperatorCondition{}
	if err := c.client.Get(ctx, c.key, oc); err != nil {
		return nil, err
	}
	if cond := meta.FindStatusCondition(oc.Spec.Conditions, apiv2.Upgradeable); cond != nil {
		return cond, nil
	}
	return nil, fmt.Errorf("conditionType %v not found", apiv2.Upgradeable)
}

func (c *namedCondition) Set(ctx context.Context, status metav1.ConditionStatus, opts ...conditions.Option) error {
	oc := &apiv2.OperatorCondition{}
	if err := c.client.Get(ctx, c.key, oc); err != nil {
		return err
	}
	cond := metav1.Condition{Type: apiv2.Upgradeable, Status: status}
	for _, opt := range opts {
		opt(&cond)
	}
	meta.SetStatusCondition(&oc.Spec.Conditions, cond)
	return c.client.Update(ctx, oc)
}

func upgradeableCondition(g Gomega, key types.NamespacedName) metav1.Condition {
	oc := &apiv2.OperatorCondition{}
	g.Expect(k8s.Get(context.Background(), key, oc)).To(Succeed())
	c := meta.FindStatusCondition(oc.Spec.Conditions, apiv2.Upgradeable)
	g.Expect(c).NotTo(BeNil(), "no Upgradeable condition yet")
	return *c
}

// settle writes the status the StatefulSet controller writes once every pod is at the
// current revision and ready.
func settle(t *testing.T, sts *appsv1.StatefulSet) {
	t.Helper()
	setStatefulSetStatus(t, sts, func(s *appsv1.StatefulSetStatus, replicas int32) {
		*s = appsv1.StatefulSetStatus{Replicas: replicas, ReadyReplicas: replicas, CurrentReplicas: replicas, UpdatedReplicas: replicas,
			AvailableReplicas: replicas, CurrentRevision: "rev-1", UpdateRevision: "rev-1"}
	})
}

// roll writes the status of a StatefulSet that has begun moving its pods to revision.
func roll(t *testing.T, sts *appsv1.StatefulSet, revision string) {
	t.Helper()
	setStatefulSetStatus(t, sts, func(s *appsv1.StatefulSetStatus, replicas int32) {
		s.UpdateRevision, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas = revision, 0, replicas-1, replicas-1
	})
}

func setStatefulSetStatus(t *testing.T, sts *appsv1.StatefulSet, change func(*appsv1.StatefulSetStatus, int32)) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		cur := &appsv1.StatefulSet{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(sts), cur)).To(Succeed())
		change(&cur.Status, *cur.Spec.Replicas)
		cur.Status.ObservedGeneration = cur.Generation
		err := k8s.Status().Update(context.Background(), cur)
		g.Expect(apierrors.IsConflict(err)).To(BeFalse(), "retry on conflict")
		g.Expect(err).NotTo(HaveOccurred())
	}, timeout, interval).Should(Succeed())
}

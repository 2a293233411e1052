package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

func statefulSet(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: n.Namespace, Name: n.Name + "-sts"}, sts)).To(Succeed())
	return sts
}

func service(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) *corev1.Service {
	svc := &corev1.Service{}
	g.Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: n.Namespace, Name: n.Name + "-svc"}, svc)).To(Succeed())
	return svc
}

func expectControlledBy(g Gomega, obj metav1.Object, n *bitcoinv1alpha1.BitcoinNetwork) {
	g.Expect(obj.GetOwnerReferences()).To(Equal([]metav1.OwnerReference{{
		APIVersion:         bitcoinv1alpha1.GroupVersion.String(),
		Kind:               "BitcoinNetwork",
		Name:               n.Name,
		UID:                n.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}}))
}

func TestNetworkCreatesStatefulSetAndService(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "create", 3)

	g.Eventually(func(g Gomega) {
		sts, svc := statefulSet(g, n), service(g, n)
		expectControlledBy(g, sts, n)
		expectControlledBy(g, svc, n)
		g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(3))
		g.Expect(sts.Spec.ServiceName).To(Equal(svc.Name))
		g.Expect(sts.Spec.PodManagementPolicy).To(Equal(appsv1.OrderedReadyPodManagement))
		g.Expect(svc.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone))

		probe := sts.Spec.Template.Spec.Containers[0].ReadinessProbe
		g.Expect(probe.Exec.Command).To(Equal([]string{"bitcoin-cli", "-chain=regtest", "-datadir=/data", "-rpcport=18443", "getnetworkinfo"}))
		g.Expect(probe.InitialDelaySeconds).To(BeEquivalentTo(10))
		g.Expect(probe.PeriodSeconds).To(BeEquivalentTo(10))
		g.Expect(probe.FailureThreshold).To(BeEquivalentTo(3))
		g.Expect(probe.SuccessThreshold).To(BeEquivalentTo(1))
		g.Expect(probe.TimeoutSeconds).To(BeEquivalentTo(1))
	}, timeout, interval).Should(Succeed())

	g.Eventually(func(g Gomega) {
		// One event says all the reconcile created: events are writes too.
		g.Expect(events(g, n)).To(ContainElement(MatchRegexp(
			`^Normal Created: Created Secret create-\S+ with generated RPC credentials; Service create-svc; NetworkPolicy create-\S+; StatefulSet create-sts$`)))
		g.Expect(events(g, n)).To(HaveLen(1))
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(meta.IsStatusConditionFalse(cur.Status.Conditions, bitcoinv1alpha1.ConditionDegraded)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

func TestNetworkScales(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "scale", 3)
	g.Eventually(func(g Gomega) { g.Expect(*statefulSet(g, n).Spec.Replicas).To(BeEquivalentTo(3)) }, timeout, interval).Should(Succeed())

	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.Nodes = 5
	g.Expect(k8s.Patch(ctx, n, patch)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(*statefulSet(g, n).Spec.Replicas).To(BeEquivalentTo(5)) }, timeout, interval).Should(Succeed())

	// What `kubectl scale btcnet/scale --replicas=2` does.
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 2}}
	g.Expect(k8s.SubResource("scale").Update(ctx, n, client.WithSubResourceBody(scale))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(*statefulSet(g, n).Spec.Replicas).To(BeEquivalentTo(2))
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), n)).To(Succeed())
		g.Expect(n.Spec.Nodes).To(BeEquivalentTo(2))
		g.Expect(events(g, n)).To(ContainElements(
			"Normal Scaled: Scaled StatefulSet scale-sts from 3 to 5 nodes",
			"Normal Scaled: Scaled StatefulSet scale-sts from 5 to 2 nodes"))
	}, timeout, interval).Should(Succeed())
}

func TestNetworkRestoresDrift(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "drift", 3)
	var svcUID types.UID
	g.Eventually(func(g Gomega) { svcUID = service(g, n).UID; statefulSet(g, n) }, timeout, interval).Should(Succeed())

	testkit.By(t, "a Service deleted by hand comes back")
	g.Expect(k8s.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: "drift-svc"}})).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(service(g, n).UID).NotTo(Equal(svcUID)) }, timeout, interval).Should(Succeed())

	testkit.By(t, "StatefulSet replicas edited by hand are restored")
	sts := statefulSet(g, n)
	sts.Spec.Replicas = ptr.To[int32](7)
	g.Expect(k8s.Update(ctx, sts, client.FieldOwner("kubectl-edit"))).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(*statefulSet(g, n).Spec.Replicas).To(BeEquivalentTo(3)) }, timeout, interval).Should(Succeed())
}

func TestNetworkBeingDeletedIsLeftAlone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	n := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "deleting", Namespace: newNamespace(t), Finalizers: []string{"test.bitcoinops.io/hold"}},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 1},
	}
	g.Expect(k8s.Create(ctx, n)).To(Succeed())
	g.Eventually(func(g Gomega) { statefulSet(g, n) }, timeout, interval).Should(Succeed())

	// Wait until the network reconciler has seen the deletion (a reconcile that ran
	// on a cache without it would still apply), then delete the StatefulSet as the
	// garbage collector would (envtest runs none): the reconcile its deletion causes
	// must leave the network alone too.
	g.Expect(k8s.Delete(ctx, n)).To(Succeed())
	seen := 0
	g.Eventually(func(g Gomega) {
		seen = countLeftAlone(n)
		g.Expect(seen).To(BeNumerically(">", 0))
	}, timeout, interval).Should(Succeed())
	g.Expect(k8s.Delete(ctx, statefulSet(g, n))).To(Succeed())
	g.Eventually(func() int { return countLeftAlone(n) }, timeout, interval).Should(BeNumerically(">", seen))
	g.Consistently(func(g Gomega) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: n.Namespace, Name: "deleting-sts"}, &appsv1.StatefulSet{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the StatefulSet was recreated: %v", err)
	}, 3*time.Second, interval).Should(Succeed())

	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), n)).To(Succeed())
	controllerutil.RemoveFinalizer(n, "test.bitcoinops.io/hold")
	g.Expect(k8s.Update(ctx, n)).To(Succeed())
}

func TestMissingSecretDegradesUntilFixed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	n := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 1, Secret: "rpc-creds"},
	}
	g.Expect(k8s.Create(ctx, n)).To(Succeed())
	expectDegraded := func(status metav1.ConditionStatus, reason string, message ...string) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), n)).To(Succeed())
			c := meta.FindStatusCondition(n.Status.Conditions, bitcoinv1alpha1.ConditionDegraded)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(status))
			g.Expect(c.Reason).To(Equal(reason))
			for _, m := range message {
				g.Expect(c.Message).To(ContainSubstring(m))
			}
		}, timeout, interval).Should(Succeed())
	}

	expectDegraded(metav1.ConditionTrue, "SecretNotFound", `Secret "rpc-creds"`, ns)
	g.Eventually(func(g Gomega) {
		g.Expect(events(g, n)).To(ContainElement(HavePrefix(`Warning SecretNotFound: Secret "rpc-creds"`)))
	}, timeout, interval).Should(Succeed())

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "rpc-creds", Namespace: ns},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "alice-the-user"},
	}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	expectDegraded(metav1.ConditionTrue, "SecretKeyMissing", `"password"`)

	secret.StringData = map[string]string{"password": "s3cret-passw0rd"}
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	expectDegraded(metav1.ConditionFalse, "Reconciled")

	// No credential reaches the status or an event.
	for _, text := range append(events(g, n), conditionMessages(n)...) {
		g.Expect(text).NotTo(Or(ContainSubstring("alice-the-user"), ContainSubstring("s3cret-passw0rd")))
	}
}

func conditionMessages(n *bitcoinv1alpha1.BitcoinNetwork) []string {
	var out []string
	for _, c := range n.Status.Conditions {
		out = append(out, c.Message)
	}
	return out
}

// countLeftAlone counts the network reconciler's reconciles that found the network
// gone or being deleted, from the operator's log.
func countLeftAlone(n *bitcoinv1alpha1.BitcoinNetwork) int {
	count := 0
	for _, line := range strings.Split(operatorLog.String(), "\n") {
		if strings.Contains(line, "Network is gone or being deleted") &&
			strings.Contains(line, `"namespace": "`+n.Namespace+`"`) && strings.Contains(line, `"name": "`+n.Name+`"`) {
			count++
		}
	}
	return count
}

func TestUserMessageDropsTheTerminalPrefix(t *testing.T) {
	g := NewWithT(t)
	g.Expect(userMessage(reconcile.TerminalError(errors.New("spec.storage: must be positive")))).To(Equal("spec.storage: must be positive"))
	g.Expect(userMessage(fmt.Errorf("render: %w", reconcile.TerminalError(errors.New("bad"))))).To(Equal("render: bad"))
	g.Expect(userMessage(errors.New("StatefulSet is invalid"))).To(Equal("StatefulSet is invalid"))
}

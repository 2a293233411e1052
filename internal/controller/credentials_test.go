package controller

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// rpcAuthOf returns the rpcauth entry of a StatefulSet's pod template.
func rpcAuthOf(g Gomega, sts *appsv1.StatefulSet) bitcoin.RPCAuth {
	entry := appliedRPCAuth(sts)
	g.Expect(entry).NotTo(BeEmpty(), "no -rpcauth argument in %v", sts.Spec.Template.Spec.Containers[0].Args)
	return entry
}

func degraded(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) metav1.Condition {
	c := meta.FindStatusCondition(getNetwork(g, n).Status.Conditions, bitcoinv1alpha1.ConditionDegraded)
	g.Expect(c).NotTo(BeNil())
	return *c
}

func TestGeneratedCredentials(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "gen", 1)

	secret := &corev1.Secret{}
	g.Eventually(func(g Gomega) {
		g.Expect(getNetwork(g, n).Status.SecretName).To(Equal("gen-rpc-credentials"))
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: n.Namespace, Name: "gen-rpc-credentials"}, secret)).To(Succeed())
	}, timeout, interval).Should(Succeed())
	g.Expect(secret.Type).To(Equal(corev1.SecretTypeBasicAuth))
	expectControlledBy(g, secret, getNetwork(g, n))
	user, password := string(secret.Data["username"]), string(secret.Data["password"])
	g.Expect(len(password)).To(BeNumerically(">=", 40), "a 256-bit random password")

	var entry bitcoin.RPCAuth
	g.Eventually(func(g Gomega) {
		entry = rpcAuthOf(g, statefulSet(g, n))
		g.Expect(entry.Matches(user, password)).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the entry stays as the network reconciles again: nothing rolls")
	setNodes(t, n, 2)
	g.Eventually(func(g Gomega) {
		sts := statefulSet(g, n)
		g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(2))
		g.Expect(rpcAuthOf(g, sts)).To(Equal(entry))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the nodes' NetworkPolicy admits RPC from the operator's pods only")
	np := &networkingv1.NetworkPolicy{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: n.Namespace, Name: "gen-netpol"}, np)).To(Succeed())
	expectControlledBy(g, np, getNetwork(g, n))
	g.Expect(np.Spec.Ingress).To(HaveLen(2))
	g.Expect(np.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels).To(HaveKeyWithValue("kubernetes.io/metadata.name", operatorNamespace))

	testkit.By(t, "a Secret of that name that the operator did not generate is not used")
	g.Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "squat-rpc-credentials", Namespace: n.Namespace},
		StringData: map[string]string{"username": "u", "password": "p"},
	})).To(Succeed())
	other := testkit.CreateNetwork(t, k8s, n.Namespace, "squat", 1)
	g.Eventually(func(g Gomega) {
		c := degraded(g, other)
		g.Expect(c.Reason).To(Equal("SecretConflict"))
		g.Expect(c.Message).To(HavePrefix(`Secret "squat-rpc-credentials" exists but was not generated for this network`))
	}, timeout, interval).Should(Succeed())
}

func TestUserCredentials(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "ali:ce", "password": "first-Passw0rd"},
	}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	n := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: "user", Namespace: ns},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 1, Secret: "mine"},
	}
	g.Expect(k8s.Create(ctx, n)).To(Succeed())

	testkit.By(t, "a username with ':' is refused")
	g.Eventually(func(g Gomega) {
		c := degraded(g, n)
		g.Expect(c.Reason).To(Equal("InvalidUsername"))
		g.Expect(c.Message).To(Equal(`The username in Secret "mine" contains ':', which Bitcoin Core's rpcauth and HTTP basic auth cannot carry: choose a username without it`))
		g.Expect(getNetwork(g, n).Status.SecretName).To(Equal("mine"))
		g.Expect(appliedRPCAuth(statefulSet(g, n))).To(BeEmpty(), "no entry for credentials that cannot work")
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "a valid username gives the nodes an entry for the Secret's credentials")
	secret.StringData = map[string]string{"username": "alice"}
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	var first bitcoin.RPCAuth
	g.Eventually(func(g Gomega) {
		g.Expect(degraded(g, n).Status).To(Equal(metav1.ConditionFalse))
		first = rpcAuthOf(g, statefulSet(g, n))
		g.Expect(first.Matches("alice", "first-Passw0rd")).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "a new password changes the pod template, which rolls the nodes")
	secret.StringData = map[string]string{"password": "second-Passw0rd"}
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	g.Eventually(func(g Gomega) {
		entry := rpcAuthOf(g, statefulSet(g, n))
		g.Expect(entry.Matches("alice", "second-Passw0rd")).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	sts := statefulSet(g, n)
	template := strings.Join(sts.Spec.Template.Spec.Containers[0].Args, " ")
	g.Expect(template).NotTo(Or(ContainSubstring("Passw0rd"), ContainSubstring("rpcpassword")))
	g.Expect(sts.Spec.Template.Spec.Containers[0].Env).To(BeEmpty())
	expectNoCredentials(t, n, "alice", "first-Passw0rd", "second-Passw0rd")
}

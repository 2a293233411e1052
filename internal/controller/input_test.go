package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// These tests feed the operator credentials a careless or hostile tenant might write.

// createSecret creates a credentials Secret of the given type.
func createSecret(t *testing.T, namespace, name string, typ corev1.SecretType, user, password string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       typ,
		Data:       map[string][]byte{"username": []byte(user), "password": []byte(password)},
	}
	NewWithT(t).Expect(k8s.Create(context.Background(), s)).To(Succeed())
	return s
}

// networkWithSecret creates a network that names a Secret in spec.secret, deleted again
// when the test ends.
func networkWithSecret(t *testing.T, namespace, name, secret string) *bitcoinv1alpha1.BitcoinNetwork {
	t.Helper()
	n := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 1, Secret: secret},
	}
	NewWithT(t).Expect(k8s.Create(context.Background(), n)).To(Succeed())
	t.Cleanup(func() { deleteAndWait(t, n) })
	return n
}

// deleteAndWait deletes a network and waits until it is gone, so that the operator
// stops dialling nodes that a test is about to stop.
func deleteAndWait(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork) {
	g := NewWithT(t)
	g.Expect(client.IgnoreNotFound(k8s.Delete(context.Background(), n))).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(n), &bitcoinv1alpha1.BitcoinNetwork{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

// expectNothingLeaked is expectNoCredentials plus the rpcauth entries: their salt and
// salted HMAC belong in the StatefulSet's arguments and nowhere else the operator
// writes.
func expectNothingLeaked(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, user string, passwords []string, entries ...bitcoin.RPCAuth) {
	t.Helper()
	expectNoCredentials(t, n, user, passwords...)
	g := NewWithT(t)
	var evs corev1.EventList
	g.Expect(k8s.List(context.Background(), &evs, client.InNamespace(n.Namespace))).To(Succeed())
	for _, entry := range entries {
		saltHMAC := string(entry)[strings.LastIndex(string(entry), ":")+1:]
		_, hmac, _ := strings.Cut(saltHMAC, "$")
		for where, text := range map[string]string{
			"the operator's log": operatorLog.String(),
			"events":             fmt.Sprint(evs.Items),
			"status":             fmt.Sprint(getNetwork(g, n).Status),
		} {
			g.Expect(text).NotTo(ContainSubstring(saltHMAC), "an rpcauth entry appears in %s", where)
			g.Expect(text).NotTo(ContainSubstring(hmac), "a salted HMAC appears in %s", where)
		}
	}
}

// unique makes a credential that no log line holds by chance.
func unique(prefix string) string { return fmt.Sprintf("%s%08x", prefix, rand.Uint32()) }

// podIP returns a loopback pod IP of a /16 of the test's own, so that a listener on
// the pod's RPC port is this test's.
// podIP returns an IP of the suite's own loopback range that no other test uses.
func podIP(t *testing.T) string {
	subnet, err := podIPs.Subnet()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return subnet + ".1"
}

func TestUsernamesWithHashDollarAndSpacesWorkEndToEnd(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	user, password := unique("al #ice $x  "), unique("pa $$ #word ")
	createSecret(t, ns, "odd", corev1.SecretTypeBasicAuth, user, password)
	n := networkWithSecret(t, ns, "odd", "odd")

	var entry bitcoin.RPCAuth
	g.Eventually(func(g Gomega) {
		g.Expect(degraded(g, n).Status).To(Equal(metav1.ConditionFalse))
		entry = rpcAuthOf(g, statefulSet(g, n))
	}, timeout, interval).Should(Succeed())
	args := statefulSet(g, n).Spec.Template.Spec.Containers[0].Args
	g.Expect(args).To(ContainElement("-rpcauth="+string(entry)), "one argument, byte for byte")
	g.Expect(entry.Matches(user, password)).To(BeTrue())

	testkit.By(t, "the operator's RPC calls carry the username as it is")
	ip := podIP(t)
	double, err := (&bitcointest.Network{}).Start(ip+":18443", ip+":18444", user, password)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(double.Stop)
	createPod(t, statefulSet(g, n), 0, ip, true)
	g.Eventually(func() int { return double.Calls("getpeerinfo") }, timeout, interval).Should(BeNumerically(">", 0))
	g.Eventually(func(g Gomega) {
		g.Expect(degraded(g, n).Status).To(Equal(metav1.ConditionFalse))
	}, timeout, interval).Should(Succeed())
	expectNothingLeaked(t, n, user, []string{password}, entry)
}

func TestUsernamesThatCannotWorkAreRefused(t *testing.T) {
	ns := newNamespace(t)
	for i, tc := range []struct {
		name, user, why string
	}{
		{"empty", "", "is empty: set a username"},
		{"colon", unique("ali:ce"), "contains ':'"},
		{"newline", unique("ev\nil"), "contains a control character"},
		{"tab", unique("ta\tb"), "contains a control character"},
		{"escape", unique("esc\x1b[0m"), "contains a control character"},
		{"not UTF-8", unique("bad\xff"), "is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			name := fmt.Sprintf("bad-%d", i)
			password := unique("Passw0rd")
			createSecret(t, ns, name, corev1.SecretTypeBasicAuth, tc.user, password)
			n := networkWithSecret(t, ns, name, name)
			g.Eventually(func(g Gomega) {
				c := degraded(g, n)
				g.Expect(c.Reason).To(Equal("InvalidUsername"))
				g.Expect(c.Message).To(HavePrefix(fmt.Sprintf("The username in Secret %q %s", name, tc.why)))
				g.Expect(appliedRPCAuth(statefulSet(g, n))).To(BeEmpty(), "no entry for credentials that cannot work")
			}, timeout, interval).Should(Succeed())
			if tc.user != "" {
				expectNothingLeaked(t, n, tc.user, []string{password})
			}
		})
	}
}

// authRecorder stands where a node's RPC port would be and records the credentials
// of every request, refusing them all.
type authRecorder struct {
	mu    sync.Mutex
	seen  []string // user + ":" + password
	close func()
}

func listenForAuth(t *testing.T, addr string) *authRecorder {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	rec := &authRecorder{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, password, _ := r.BasicAuth()
		rec.mu.Lock()
		rec.seen = append(rec.seen, user+":"+password)
		rec.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rec
}

func (a *authRecorder) saw(user, password string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.seen {
		if strings.Contains(s, user) || strings.Contains(s, password) {
			return true
		}
	}
	return false
}

// A network that names an Opaque Secret, as networks could before this check: the
// network turns Degraded, its nodes keep the rpcauth entry they run with, and no RPC
// call carries the Opaque Secret's contents.
func TestSecretOfAnotherTypeIsNotUsed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	user, password := unique("typed"), unique("Passw0rd")
	secret := createSecret(t, ns, "creds", corev1.SecretTypeBasicAuth, user, password)
	ip := podIP(t)
	rec := listenForAuth(t, ip+":18443")
	n := networkWithSecret(t, ns, "typed", "creds")
	var entry bitcoin.RPCAuth
	g.Eventually(func(g Gomega) {
		entry = rpcAuthOf(g, statefulSet(g, n))
		g.Expect(entry.Matches(user, password)).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the peer reconciler dials the node with the basic-auth Secret's credentials")
	createPod(t, statefulSet(g, n), 0, ip, true)
	g.Eventually(func() bool { return rec.saw(user, password) }, timeout, interval).Should(BeTrue())

	testkit.By(t, "an Opaque Secret of the same name degrades the network")
	opaqueUser, opaquePassword := unique("opaque"), unique("Opaque-Passw0rd")
	g.Expect(k8s.Delete(ctx, secret)).To(Succeed())
	createSecret(t, ns, "creds", corev1.SecretTypeOpaque, opaqueUser, opaquePassword)
	g.Eventually(func(g Gomega) {
		c := degraded(g, n)
		g.Expect(c.Reason).To(Equal("SecretTypeInvalid"))
		g.Expect(c.Message).To(Equal(`Secret "creds" is of type "Opaque", not kubernetes.io/basic-auth: recreate it with that type (a Secret's type cannot change) and the keys username and password`))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "the nodes keep their entry, and no call carries the Opaque Secret's contents")
	g.Consistently(func(g Gomega) {
		g.Expect(rpcAuthOf(g, statefulSet(g, n))).To(Equal(entry))
		g.Expect(rec.saw(opaqueUser, opaquePassword)).To(BeFalse())
	}, 3*testPeerPeriod, interval).Should(Succeed())
	expectNothingLeaked(t, n, opaqueUser, []string{opaquePassword, password}, entry)
}

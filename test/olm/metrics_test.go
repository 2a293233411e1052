//go:build olm

package olm

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	metricsService = "bitcoin-operator-controller-manager-metrics-service"
	// The bundle's ClusterRole for whoever scrapes the metrics.
	metricsReaderRole = "bitcoin-operator-metrics-reader"
)

// metricsClient dials only the operator's loopback metrics port. The operator serves a
// self-signed certificate it made at start (no --metrics-cert-path), so there is no CA
// to verify it by; what this test checks is the authentication and authorization.
var metricsClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
	Proxy:           nil,
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback, the operator's self-signed certificate
}}

// expectMetricsSecured checks what the bundle gives a monitoring stack: a Service for
// the Deployment's https port, and a metrics endpoint that serves HTTPS only to callers
// the API server authenticates and authorizes. Without a token it answers 401, with
// the token of a ServiceAccount that has no grant 403, and with one bound to the
// bundle's metrics-reader ClusterRole it serves the metrics.
func (o *operator) expectMetricsSecured(t *testing.T, namespace string) {
	t.Helper()
	testkit.By(t, "the metrics endpoint serves HTTPS to metrics readers only")
	g := NewWithT(t)
	ctx := context.Background()

	dep := &appsv1.Deployment{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: deploymentName}, dep)).To(Succeed())
	g.Expect(dep.Spec.Template.Spec.Containers[0].Ports).To(ContainElement(And(
		HaveField("Name", "https"), HaveField("ContainerPort", BeEquivalentTo(8443)))))
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--metrics-bind-address=:8443"))
	svc := &corev1.Service{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: metricsService}, svc)).To(Succeed())
	}, olmTimeout, interval).Should(Succeed(), "OLM creates the bundle's metrics Service")
	g.Expect(svc.Spec.Ports).To(ContainElement(And(HaveField("Port", BeEquivalentTo(8443)),
		HaveField("TargetPort", Equal(intstr.FromString("https"))))))
	g.Expect(labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels))).To(BeTrue(),
		"the Service selects the operator's pods")

	reader := metricsCaller(t, namespace, "metrics-reader")
	stranger := metricsCaller(t, namespace, "metrics-stranger")
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: metricsReaderRole}, &rbacv1.ClusterRole{})).To(Succeed())
	}, olmTimeout, interval).Should(Succeed(), "OLM creates the bundle's metrics-reader ClusterRole")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: metricsReaderRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: "metrics-reader"}},
	}
	g.Expect(k8s.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), binding) })
	// The endpoint caches a denial for 30 s: ask it only once RBAC grants the reader.
	g.Eventually(func(g Gomega) {
		g.Expect(canI(g, "system:serviceaccount:"+namespace+":metrics-reader", namespace, []string{"get", "/metrics"})).To(BeTrue())
	}, olmTimeout, interval).Should(Succeed())

	code, _ := o.scrape(g, "")
	g.Expect(code).To(Equal(http.StatusUnauthorized), "no token")
	code, _ = o.scrape(g, stranger)
	g.Expect(code).To(Equal(http.StatusForbidden), "a token without the metrics-reader role")
	code, body := o.scrape(g, reader)
	g.Expect(code).To(Equal(http.StatusOK), "a token bound to the metrics-reader role: %s", body)
	g.Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
	// The operator's own families (docs/monitoring.md), of the sample network it runs.
	for _, family := range []string{"bitcoin_operator_network_nodes_ready{", "bitcoin_operator_network_connected{",
		"bitcoin_operator_node_rpc_up{", "bitcoin_operator_peer_round_duration_seconds_count{", "bitcoin_operator_api_writes_total{"} {
		g.Expect(body).To(ContainSubstring(family))
	}
}

// scrape gets the metrics with token (none if empty) over HTTPS.
func (o *operator) scrape(g Gomega, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, o.metrics, nil)
	g.Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := metricsClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.TLS).NotTo(BeNil(), "served over TLS")
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(body)
}

// metricsCaller creates a ServiceAccount in namespace and returns a token of it.
func metricsCaller(t *testing.T, namespace, name string) string {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}})
	g.Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
	cs, err := kubernetes.NewForConfig(lc.Config)
	g.Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}},
		metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

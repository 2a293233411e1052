package controller

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/operator-framework/api/crds"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/loopback"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// The suite runs the operator's manager in-process against a real kube-apiserver and
// etcd, authenticated as the operator's ServiceAccount and authorized only by the
// ClusterRole that `make manifests` generates: every scenario proves the RBAC too.

const (
	operatorNamespace = "bitcoin-operator-system"
	operatorAccount   = "controller-manager"
	timeout           = 20 * time.Second
	// suiteWorkers is the operator's MaxConcurrentReconciles in the suite.
	suiteWorkers = 2
	interval     = 100 * time.Millisecond
)

var (
	adminConfig *rest.Config
	k8s         client.Client // the tests' own client, as cluster admin
	// podIPs is the loopback range the tests' pods take their IPs from.
	podIPs *loopback.Range
	writes = &writeCounter{}
	// operatorLog holds everything the operator logged, for tests that look for
	// credentials in it.
	operatorLog = &syncBuffer{}
)

// testPeerPeriod keeps the peer reconciler's rounds short, so that a restarted node's
// lost entries come back within a test's patience.
const testPeerPeriod = 2 * time.Second

// testMaxNodes is the suite operator's --max-nodes-per-network: above every other
// test's networks, low enough to cross cheaply.
const testMaxNodes = 20

// testStuckAfter and testRepairPeriod: a pod is stuck after a few seconds, and a
// network has at most one stuck pod deleted per test.
const (
	testStuckAfter   = 3 * time.Second
	testRepairPeriod = time.Hour
)

func TestMain(m *testing.M) {
	testkit.Main("envtest", func() (int, error) { return runSuite(m) })
}

func runSuite(m *testing.M) (int, error) {
	// Debug level into the buffer whatever the console shows: credentials must not
	// reach any level.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(operatorLog, levelWriter(os.Stderr))), zap.UseDevMode(true), zap.Level(zapcore.Level(-2))))
	assets, err := kubeAssets()
	if err != nil {
		return 1, err
	}
	if podIPs, err = loopback.Claim(); err != nil {
		return 1, err
	}
	defer podIPs.Release()
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")},
		// OLM's OperatorCondition, from the API module the operator's types come from.
		CRDs:                  []*apiextensionsv1.CustomResourceDefinition{crds.OperatorCondition()},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	// As on OpenShift, OLM's main home: blockOwnerDeletion needs update on
	// bitcoinnetworks/finalizers.
	env.ControlPlane.GetAPIServer().Configure().Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	if adminConfig, err = env.Start(); err != nil {
		return 1, fmt.Errorf("failed to start envtest: %w", err)
	}
	defer func() { _ = env.Stop() }()
	if k8s, err = client.New(adminConfig, client.Options{Scheme: NewScheme()}); err != nil {
		return 1, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	role, err := managerRole()
	if err != nil {
		return 1, err
	}
	if err := grant(ctx, operatorAccount, role); err != nil {
		return 1, err
	}
	if err := startOperator(ctx); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// kubeAssets returns the envtest binaries' directory: KUBEBUILDER_ASSETS as `make test`
// sets it, or what hack/kube-assets.sh provides for a plain `go test`.
func kubeAssets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join("..", "..", "hack", "kube-assets.sh"), "etcd", "kube-apiserver").Output()
	if err != nil {
		return "", fmt.Errorf("hack/kube-assets.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// levelWriter shows info and above on the console, or everything with TEST_VERBOSE.
func levelWriter(w io.Writer) io.Writer {
	if os.Getenv("TEST_VERBOSE") != "" {
		return w
	}
	return writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("\tDEBUG\t")) || bytes.Contains(p, []byte("\tLevel(-2)\t")) {
			return len(p), nil
		}
		return w.Write(p)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// syncBuffer is a bytes.Buffer safe for the manager's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startOperator runs the manager as the operator's main does, through Setup, as the
// operator's ServiceAccount, counting its write requests.
func startOperator(ctx context.Context) error {
	cfg := impersonating(operatorAccount)
	cfg.WrapTransport = writes.wrap
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 NewScheme(),
		Cache:                  CacheOptions(""),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	opts := Options{MaxConcurrentReconciles: suiteWorkers, PeerPeriod: testPeerPeriod,
		StuckAfter: testStuckAfter, RepairPeriod: testRepairPeriod, MaxNodesPerNetwork: testMaxNodes,
		OperatorNamespace: operatorNamespace, OperatorPodLabels: map[string]string{"app.kubernetes.io/name": "bitcoin-operator"}}
	if err := Setup(ctx, mgr, opts); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
			os.Exit(1)
		}
	}()
	return nil
}

// impersonating returns a config that acts as a ServiceAccount of the operator's
// namespace.
func impersonating(account string) *rest.Config {
	cfg := rest.CopyConfig(adminConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", operatorNamespace, account)}
	return cfg
}

// managerRole reads the ClusterRole that `make manifests` generates from the markers.
func managerRole() (*rbacv1.ClusterRole, error) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	return role, yaml.UnmarshalStrict(data, role)
}

// grant binds a copy of role, named after the account, to the account.
func grant(ctx context.Context, account string, role *rbacv1.ClusterRole) error {
	role = role.DeepCopy()
	role.ObjectMeta = metav1.ObjectMeta{Name: "test-" + account}
	if err := k8s.Create(ctx, role); err != nil {
		return err
	}
	return k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "test-" + account},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: operatorNamespace}},
	})
}

// writeCounter counts the operator's write requests at its HTTP transport, so that
// nothing the operator sends (applies, status, events) escapes it.
type writeCounter struct {
	mu sync.Mutex
	// times holds when each path was written.
	times map[string][]time.Time
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			w.mu.Lock()
			if w.times == nil {
				w.times = map[string][]time.Time{}
			}
			w.times[req.URL.Path] = append(w.times[req.URL.Path], time.Now())
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

// in returns the number of writes so far in a namespace, and the paths written.
func (w *writeCounter) in(namespace string) (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	count, paths := 0, []string{}
	for path, times := range w.times {
		if strings.Contains(path, "/namespaces/"+namespace+"/") {
			count += len(times)
			paths = append(paths, path)
		}
	}
	return count, paths
}

// at returns when path was written.
func (w *writeCounter) at(path string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.times[path]...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// reconciles returns how many reconciles a controller has finished, from
// controller-runtime's own metrics.
func reconciles(g Gomega, controllerName string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controllerName {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// newNamespace creates a namespace of its own for a test, with the default
// ServiceAccount that pods need (envtest runs no ServiceAccount controller).
func newNamespace(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	g.Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	g.Expect(k8s.Create(context.Background(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name},
	})).To(Succeed())
	return ns.Name
}

// setNodes changes spec.nodes with a merge patch, which the status the operator writes
// meanwhile cannot make conflict.
func setNodes(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, nodes int32) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"nodes":%d}}`, nodes))
	NewWithT(t).Expect(k8s.Patch(context.Background(), n.DeepCopy(), client.RawPatch("application/merge-patch+json", patch))).To(Succeed())
}

// events returns the reasons and notes of the events about a network.
func events(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) []string {
	var list corev1.EventList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(n.Namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == n.Name && e.InvolvedObject.Kind == networkKind {
			out = append(out, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	return out
}

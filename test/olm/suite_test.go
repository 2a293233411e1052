//go:build olm

// Package olm installs, upgrades and uninstalls the operator's bundle through the real
// Operator Lifecycle Manager: OLM's own olm and catalog controllers run as processes
// against the local control plane (test/cluster), opm serves a catalog rendered from
// bundle/, and OLM resolves Subscriptions, runs InstallPlans and installs the CSV. The
// Deployment's pods are kwok's and run nothing, so the test runs the operator binary
// as that Deployment would run it: its args and env (what OLM injected among them), as
// its ServiceAccount, authorized by the RBAC that OLM created.
//
// Run it with `make test-olm`.
package olm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/svcproxy"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const (
	olmNamespace = "olm"
	// The namespaces the installs go to. Their operator ServiceAccounts are the audit
	// log's users.
	allNamespacesNS = "operators"
	ownNamespaceNS  = "bitcoin-own"
	upgradeNS       = "bitcoin-upgrade"

	packageName    = "bitcoin-operator"
	serviceAccount = "bitcoin-operator-controller-manager"
	deploymentName = "bitcoin-operator-controller-manager"
	csv010         = "bitcoin-operator.v0.1.0"
	csv011         = "bitcoin-operator.v0.1.1"

	interval = 250 * time.Millisecond
	// OLM's controllers resync on their own schedules; a minute covers each step here.
	olmTimeout      = 2 * time.Minute
	convergeTimeout = time.Minute
)

var (
	lc      *cluster.Cluster
	k8s     client.Client
	tools   string // the directory of olm, catalog and opm
	manager string // the operator binary
	channel string // the bundle's default channel
	// services stands in for cluster DNS and kube-proxy for OLM's catalog operator,
	// which dials a CatalogSource with spec.image by its Service's DNS name.
	services *svcproxy.Proxy
	// catalogOperator is OLM's catalog process, whose log shows every name it looked up.
	catalogOperator *cluster.Process
)

func TestMain(m *testing.M) {
	testkit.Main("olm", func() (int, error) { return runSuite(m) })
}

func runSuite(m *testing.M) (int, error) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		return 1, err
	}
	if tools, err = script(root, "hack/olm-tools.sh"); err != nil {
		return 1, err
	}
	crds, err := script(root, "hack/olm-tools.sh", "--crds")
	if err != nil {
		return 1, err
	}
	lc, err = cluster.Start(ctx, cluster.Options{AuditUsers: []string{
		operatorUser(allNamespacesNS), operatorUser(ownNamespaceNS), operatorUser(upgradeNS),
	}, Log: os.Stderr})
	if err != nil {
		return 1, err
	}
	defer lc.Stop()
	if k8s, err = client.New(lc.Config, client.Options{Scheme: newScheme()}); err != nil {
		return 1, err
	}
	if services, err = svcproxy.Start(svcproxy.ServiceLookup(k8s)); err != nil {
		return 1, err
	}
	defer services.Close()
	if err := startOLM(ctx, crds); err != nil {
		return 1, err
	}
	if manager, err = lc.BuildOperator(ctx); err != nil {
		return 1, err
	}
	if err := serveCatalogs(ctx, root); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

func newScheme() *runtime.Scheme {
	s := controller.NewScheme()
	utilruntime.Must(operatorsv1alpha1.AddToScheme(s))
	utilruntime.Must(operatorsv1.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}

// script runs one of the repository's scripts and returns what it printed.
func script(root, name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(root, name), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startOLM installs OLM's CRDs and namespaces and starts its two controllers, as
// OLM's own manifests would run them in the olm namespace. Both serve health and
// metrics on the fixed port 8080 (no flag changes it): at most one gets it, and
// nothing here reads it; a failed bind is only logged.
func startOLM(ctx context.Context, crds string) error {
	// Server-side: some of OLM's CRDs are too large for the last-applied annotation.
	if out, err := lc.Kubectl(ctx, "apply", "--server-side", "-f", crds).CombinedOutput(); err != nil {
		return fmt.Errorf("applying OLM's CRDs: %w: %s", err, out)
	}
	if out, err := lc.Kubectl(ctx, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s").CombinedOutput(); err != nil {
		return fmt.Errorf("waiting for OLM's CRDs: %w: %s", err, out)
	}
	for _, ns := range []string{olmNamespace, allNamespacesNS} {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	// olm reads its kubeconfig from KUBECONFIG only.
	if _, err := lc.StartProcess("olm", filepath.Join(tools, "olm"), []string{
		"--namespace", olmNamespace, "--writeStatusName", "", "--writePackageServerStatusName", "",
	}, "KUBECONFIG="+lc.Kubeconfig); err != nil {
		return err
	}
	var err error
	catalogOperator, err = lc.StartProcess("catalog", filepath.Join(tools, "catalog"), []string{
		"--kubeconfig", lc.Kubeconfig, "--namespace", olmNamespace, "--writeStatusName", "",
	}, append(proxyEnv(), lookupLogEnv)...)
	return err
}

// lookupLogEnv has Go's resolver print every name it is asked to look up, as
// "go package net: hostLookupOrder(NAME) = ...", before it reads /etc/hosts or asks
// DNS. OLM's binaries are built with netgo and without cgo, so every lookup of theirs
// goes through it.
const lookupLogEnv = "GODEBUG=netdns=go+2"

// expectNoNameLookups fails if OLM's catalog operator has looked any name up.
func expectNoNameLookups(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(catalogOperator.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "hostLookupOrder(") {
			t.Errorf("OLM's catalog operator looked a name up: %s", line)
		}
	}
}

// proxyEnv sends the catalog operator's connections to Service names through the
// services proxy, without a DNS lookup: OLM dials a CatalogSource's address with
// grpc.NewClient, whose delegating resolver (grpc-go v1.76) leaves a dns-scheme
// target unresolved when HTTPS_PROXY applies to it and sends the name in an HTTP
// CONNECT. Go's proxy rules never apply to loopback IPs, so its connections to the
// API server, to spec.address catalogs and to pod IPs stay direct. GRPC_PROXY would
// take OLM's own proxy path (a SOCKS dialer) instead, and NO_PROXY could exempt a
// name from the proxy and so have it looked up: both are cleared.
func proxyEnv() []string {
	u := "http://" + services.Addr
	return []string{"HTTPS_PROXY=" + u, "https_proxy=" + u, "GRPC_PROXY=", "grpc_proxy=", "NO_PROXY=", "no_proxy="}
}

// operatorUser is the user the API server sees for the operator ServiceAccount that
// OLM creates in namespace.
func operatorUser(namespace string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

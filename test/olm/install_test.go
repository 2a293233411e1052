//go:build olm

package olm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// TestInstallModes installs the bundle through a Subscription in every install mode
// its CSV claims, runs the operator as OLM's Deployment, sees a sample network
// converge, and uninstalls it again, leaving the CRD and the networks.
func TestInstallModes(t *testing.T) {
	for _, mode := range claimedInstallModes(t) {
		t.Run(string(mode), func(t *testing.T) {
			dumpOnFailure(t)
			var namespace string
			var targets, notServed []string
			networks := "bitcoin-all"
			switch mode {
			case operatorsv1alpha1.InstallModeTypeAllNamespaces:
				namespace = allNamespacesNS // OLM's namespace for operators of all namespaces
			case operatorsv1alpha1.InstallModeTypeOwnNamespace:
				namespace, networks = ownNamespaceNS, ownNamespaceNS
				targets = []string{ownNamespaceNS}
				// A tenant's namespace and the system's.
				notServed = []string{"bitcoin-all", "kube-system"}
			default:
				t.Fatalf("the CSV claims install mode %s, which this test does not cover", mode)
			}
			createNamespace(t, namespace)
			createNamespace(t, networks)
			createOperatorGroup(t, namespace, targets)
			subscribe(t, namespace, installCatalog, operatorsv1alpha1.ApprovalAutomatic, "")
			expectSucceeded(t, namespace, csv010)
			expectInstalledByOLM(t, namespace, csv010)
			expectPermissionsScoped(t)
			served := []string{namespace, networks}
			if targets == nil {
				served = append(served, "kube-system") // every namespace
			}
			expectServes(t, namespace, served, notServed)

			testkit.By(t, "the operator, run as OLM's Deployment, makes a sample network converge")
			op := startAsDeployment(t, namespace, csv010)
			network := createSample(t, networks)
			expectConverged(t, network, 3)
			op.expectNothingForbidden(t)
			op.expectMetricsSecured(t, namespace)
			op.stop()

			uninstall(t, namespace, csv010, network)
		})
	}
}

// bundleCSV reads bundle/'s ClusterServiceVersion.
func bundleCSV(g Gomega) *operatorsv1alpha1.ClusterServiceVersion {
	root, err := cluster.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "bundle", "manifests", packageName+".clusterserviceversion.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	g.Expect(yaml.Unmarshal(data, csv)).To(Succeed())
	return csv
}

// claimedInstallModes reads the install modes bundle/'s CSV supports.
func claimedInstallModes(t *testing.T) []operatorsv1alpha1.InstallModeType {
	t.Helper()
	g := NewWithT(t)
	csv := bundleCSV(g)
	var modes []operatorsv1alpha1.InstallModeType
	for _, m := range csv.Spec.InstallModes {
		if m.Supported {
			modes = append(modes, m.Type)
		}
	}
	g.Expect(modes).NotTo(BeEmpty())
	return modes
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	NewWithT(t).Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
}

// createOperatorGroup creates the namespace's OperatorGroup, for targets or, with none,
// for all namespaces.
func createOperatorGroup(t *testing.T, namespace string, targets []string) {
	t.Helper()
	err := k8s.Create(context.Background(), &operatorsv1.OperatorGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "bitcoin-operator", Namespace: namespace},
		Spec:       operatorsv1.OperatorGroupSpec{TargetNamespaces: targets},
	})
	NewWithT(t).Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
}

func subscribe(t *testing.T, namespace, catalog string, approval operatorsv1alpha1.Approval, startingCSV string) {
	t.Helper()
	testkit.By(t, "subscribing in "+namespace+" to "+catalog)
	NewWithT(t).Expect(k8s.Create(context.Background(), &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: packageName, Namespace: namespace},
		Spec: &operatorsv1alpha1.SubscriptionSpec{
			CatalogSource: catalog, CatalogSourceNamespace: olmNamespace,
			Package: packageName, Channel: channel,
			InstallPlanApproval: approval, StartingCSV: startingCSV,
		},
	})).To(Succeed())
}

func getCSV(g Gomega, namespace, name string) *operatorsv1alpha1.ClusterServiceVersion {
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, csv)).To(Succeed())
	return csv
}

func expectSucceeded(t *testing.T, namespace, name string) {
	t.Helper()
	testkit.By(t, name+" reaches Succeeded")
	NewWithT(t).Eventually(func(g Gomega) {
		csv := getCSV(g, namespace, name)
		g.Expect(csv.Status.Phase).To(Equal(operatorsv1alpha1.CSVPhaseSucceeded), "%s: %s", csv.Status.Reason, csv.Status.Message)
	}, olmTimeout, interval).Should(Succeed())
}

// expectInstalledByOLM checks that OLM, not the test, created what the CSV declares:
// the Deployment, the ServiceAccount, the RBAC bound to it and the CRD.
func expectInstalledByOLM(t *testing.T, namespace, csvName string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	csv := getCSV(g, namespace, csvName)
	ownedByCSV := HaveField("OwnerReferences", ContainElement(HaveField("UID", csv.UID)))

	dep := &appsv1.Deployment{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: deploymentName}, dep)).To(Succeed())
	g.Expect(dep.ObjectMeta).To(ownedByCSV)
	sa := &corev1.ServiceAccount{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: serviceAccount}, sa)).To(Succeed())
	g.Expect(sa.ObjectMeta).To(ownedByCSV)

	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: namespace}
	var crbs rbacv1.ClusterRoleBindingList
	g.Expect(k8s.List(ctx, &crbs)).To(Succeed())
	g.Expect(crbs.Items).To(ContainElement(HaveField("Subjects", ContainElement(subject))), "a ClusterRoleBinding for the clusterPermissions")
	var rbs rbacv1.RoleBindingList
	g.Expect(k8s.List(ctx, &rbs, client.InNamespace(namespace))).To(Succeed())
	g.Expect(rbs.Items).To(ContainElement(HaveField("Subjects", ContainElement(subject))), "a RoleBinding for the permissions")

	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "bitcoinnetworks.bitcoin.bitcoinops.io"}, crd)).To(Succeed())
	g.Expect(crd.Labels).To(HaveKeyWithValue("olm.managed", "true"), "OLM applied the CRD")
}

// createSample creates the sample network of config/samples in namespace.
func createSample(t *testing.T, namespace string) *bitcoinv1alpha1.BitcoinNetwork {
	t.Helper()
	g := NewWithT(t)
	root, err := cluster.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", "bitcoin_v1alpha1_bitcoinnetwork.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	n := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(yaml.Unmarshal(data, n)).To(Succeed())
	n.Namespace = namespace
	g.Expect(k8s.Create(context.Background(), n)).To(Succeed())
	return n
}

// expectConverged waits until the network has nodes ready pods and says so.
func expectConverged(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, nodes int32) {
	t.Helper()
	testkit.By(t, "network "+n.Namespace+"/"+n.Name+" converges")
	NewWithT(t).Eventually(func(g Gomega) {
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
		g.Expect(cur.Status.ReadyNodes).To(Equal(nodes))
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)).To(BeTrue())
	}, convergeTimeout, interval).Should(Succeed())
}

// uninstall deletes the Subscription and the CSV, as OLM's users uninstall an
// operator, and checks that OLM removed the operator but left the CRD and the network.
func uninstall(t *testing.T, namespace, csvName string, network *bitcoinv1alpha1.BitcoinNetwork) {
	t.Helper()
	testkit.By(t, "uninstalling: deleting the Subscription and the CSV")
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8s.Delete(ctx, &operatorsv1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: packageName, Namespace: namespace}})).To(Succeed())
	// The garbage collector removes the Subscription's InstallPlans. One that is still
	// there when the CSV goes is run again by OLM, and creates the CSV anew.
	g.Eventually(func(g Gomega) {
		var plans operatorsv1alpha1.InstallPlanList
		g.Expect(k8s.List(ctx, &plans, client.InNamespace(namespace))).To(Succeed())
		g.Expect(plans.Items).To(BeEmpty())
	}, olmTimeout, interval).Should(Succeed())
	g.Expect(k8s.Delete(ctx, &operatorsv1alpha1.ClusterServiceVersion{ObjectMeta: metav1.ObjectMeta{Name: csvName, Namespace: namespace}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: deploymentName}, &appsv1.Deployment{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Deployment is gone: %v", err)
		var csvs operatorsv1alpha1.ClusterServiceVersionList
		g.Expect(k8s.List(ctx, &csvs)).To(Succeed())
		g.Expect(csvs.Items).To(BeEmpty(), "no CSV, nor any copy of it, is left")
	}, olmTimeout, interval).Should(Succeed())

	testkit.By(t, "the CRD and the network stay")
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "bitcoinnetworks.bitcoin.bitcoinops.io"}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed())
	g.Consistently(func(g Gomega) {
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(network), cur)).To(Succeed())
		g.Expect(cur.DeletionTimestamp).To(BeNil())
		sts := &appsv1.StatefulSet{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: network.Namespace, Name: network.Name + "-sts"}, sts)).To(Succeed())
		g.Expect(sts.DeletionTimestamp).To(BeNil())
	}, 5*time.Second, interval).Should(Succeed())
}

// dumpOnFailure logs OLM's objects and the processes' last log lines if t fails.
func dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx := context.Background()
		for _, args := range [][]string{
			{"get", "catalogsources,subscriptions,installplans,csv,operatorgroups,operatorconditions", "-A", "-o", "wide"},
			{"get", "bitcoinnetworks,statefulsets,pods,deployments", "-A", "-o", "wide"},
			{"get", "csv,installplans,operatorconditions", "-A", "-o", "yaml"},
		} {
			out, _ := lc.Kubectl(ctx, args...).CombinedOutput()
			t.Logf("kubectl %v:\n%s", args, out)
		}
		for _, p := range lc.Processes() {
			switch p.Name {
			case "olm", "catalog", "kube-controller-manager":
				t.Logf("%s, last lines:\n%s", p.Name, testkit.Tail(p.LogPath, 40))
			default:
				if len(p.Name) > 9 && p.Name[:9] == "operator-" {
					t.Logf("%s, last lines:\n%s", p.Name, testkit.Tail(p.LogPath, 40))
				}
			}
		}
	})
}

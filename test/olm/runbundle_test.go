//go:build olm

package olm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/gomega"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/internal/ociimage"
	"github.com/bitcoinops/bitcoin-operator/internal/publish"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/olmpods"
	"github.com/bitcoinops/bitcoin-operator/test/registry"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const runBundleNS = "bitcoin-run-bundle"

// TestRunBundle does what the README tells a user to try first: the real
// `operator-sdk run bundle` of the pushed bundle image, with the pushed opm image as
// the index image, then `run bundle-upgrade` to the next version and `cleanup`. The
// images come from make images' own code, pushed to a TLS registry on loopback; the
// registry pod and OLM's unpack Job are played by test/olmpods; the operator runs
// from the binary inside the pushed operator image.
func TestRunBundle(t *testing.T) {
	dumpOnFailure(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := pushImages(t)
	go env.player.Run(ctx)
	reg := env.reg

	createNamespace(t, runBundleNS)
	image := func(repo, tag string) string { return reg.Host + "/bitcoinops/" + repo + ":" + tag }
	sdk(t, reg, "run", "bundle", image("bitcoin-operator-bundle", "v0.1.0"),
		"--index-image", image("opm", "v0.1.0"), "--namespace", runBundleNS, "--timeout", "5m")
	expectSucceeded(t, runBundleNS, csv010)
	expectSDKCatalogsServed(t, env.player)

	testkit.By(t, "the operator, from the pushed image's binary, makes the sample network Available")
	op := startBinaryAsDeployment(t, runBundleNS, csv010, env.binary)
	network := createSample(t, runBundleNS)
	expectConverged(t, network, 3)
	expectUpgradeable(t, runBundleNS, csv010, metav1.ConditionTrue, "")
	op.expectNothingForbidden(t)
	op.stop()

	sdk(t, reg, "run", "bundle-upgrade", image("bitcoin-operator-bundle", "v0.1.1"),
		"--namespace", runBundleNS, "--timeout", "5m")
	expectSucceeded(t, runBundleNS, csv011)
	expectSDKCatalogsServed(t, env.player)

	sdk(t, reg, "cleanup", packageName, "--namespace", runBundleNS, "--timeout", "3m")
	expectCleanedUp(t)

	installFromCatalogImage(t, env)
}

const catalogImageSource = "bitcoin-catalog-image"

// installFromCatalogImage installs the operator once from the pushed catalog image, as
// a user would: a CatalogSource with spec.image. OLM creates the catalog pod and its
// Service and dials the Service by its DNS name, which the services proxy maps to the
// pod's IP without a lookup; the Player runs the image's own /bin/opm on its own
// /configs for the pod. OLM unpacks the bundle the catalog names by digest, and the
// Deployment runs the operator image by digest: the release bundle's.
func installFromCatalogImage(t *testing.T, env *pushed) {
	t.Helper()
	testkit.By(t, "OLM installs from the pushed catalog image, a CatalogSource with spec.image")
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8s.Create(ctx, &operatorsv1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: catalogImageSource, Namespace: olmNamespace},
		Spec: operatorsv1alpha1.CatalogSourceSpec{SourceType: operatorsv1alpha1.SourceTypeGrpc,
			Image: env.refs.Catalog, DisplayName: "bitcoin-operator (catalog image)"},
	})).To(Succeed())
	addr := catalogImageSource + "." + olmNamespace + ".svc:50051"
	g.Eventually(func(g Gomega) {
		cs := &operatorsv1alpha1.CatalogSource{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: olmNamespace, Name: catalogImageSource}, cs)).To(Succeed())
		g.Expect(cs.Status.RegistryServiceStatus).NotTo(BeNil())
		g.Expect(cs.Status.RegistryServiceStatus.Address()).To(Equal(addr), "OLM dials the Service by name")
		g.Expect(cs.Status.GRPCConnectionState).NotTo(BeNil())
		g.Expect(cs.Status.GRPCConnectionState.LastObservedState).To(Equal("READY"))
	}, olmTimeout, interval).Should(Succeed())
	expectCatalogImageServed(t, env, addr)

	ns := "bitcoin-catalog-image"
	createNamespace(t, ns)
	createOperatorGroup(t, ns, []string{ns})
	subscribe(t, ns, catalogImageSource, operatorsv1alpha1.ApprovalAutomatic, "")
	expectSucceeded(t, ns, csv010)
	dep := &appsv1.Deployment{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: deploymentName}, dep)).To(Succeed())
	g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(env.refs.Operator), "the operator image by digest")
	g.Expect(services.Forbidden()).To(BeEmpty(), "no connection through the proxy needed a name lookup")
	expectNoNameLookups(t)
}

// expectCatalogImageServed checks that the catalog pod OLM made runs the pushed image,
// that the Player served it, and that OLM's connection to the Service's name went
// through the services proxy to that pod's IP.
func expectCatalogImageServed(t *testing.T, env *pushed, addr string) {
	t.Helper()
	g := NewWithT(t)
	var pods corev1.PodList
	g.Expect(k8s.List(context.Background(), &pods, client.InNamespace(olmNamespace),
		client.MatchingLabels{"olm.catalogSource": catalogImageSource})).To(Succeed())
	g.Expect(pods.Items).To(HaveLen(1))
	pod := pods.Items[0]
	g.Expect(pod.Spec.Containers[0].Image).To(Equal(env.refs.Catalog))
	g.Expect(env.player.Err("pod/" + pod.Name)).NotTo(HaveOccurred())
	g.Expect(env.player.Catalog(pod.Name)).NotTo(BeEmpty(), "the Player served %s", pod.Name)
	t.Logf("the services proxy served %q; refused %q", services.Served(), services.Refused())
	g.Expect(services.Served()).To(ContainElement(addr+" -> "+pod.Status.PodIP+":50051"),
		"OLM's CONNECT to the Service's name")
}

// pushed is what pushImages made: the registry, the images in it, the operator binary
// from the operator image, and the Player of the pods that must run something.
type pushed struct {
	reg    *registry.Registry
	refs   publish.Refs
	binary string
	player *olmpods.Player
}

// pushImages starts a TLS registry on loopback and pushes into it, with make images'
// own code, the images of bundle/ at 0.1.0 and a bundle image of the next version,
// 0.1.1, which replaces it.
func pushImages(t *testing.T) *pushed {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	labelNodesLinux(t)
	reg, err := registry.Start(lc.Dir)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(reg.Stop)
	pull := []remote.Option{remote.WithTransport(reg.Transport())}

	testkit.By(t, "building and pushing the images as make images does")
	root, err := cluster.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	dir := t.TempDir()
	opts := publish.Options{Registry: reg.Host + "/bitcoinops", Version: "0.1.0", OPM: filepath.Join(tools, "opm"),
		Bundle: filepath.Join(root, "bundle"), Release: filepath.Join(dir, "release-0.1.0"), Root: root, Remote: pull}
	refs, err := publish.All(ctx, opts)
	g.Expect(err).NotTo(HaveOccurred())
	next, err := bumpedBundle(filepath.Join(root, "bundle"), filepath.Join(dir, "bundle-0.1.1"), "0.1.1", csv011, csv010)
	g.Expect(err).NotTo(HaveOccurred())
	opts.Version = "0.1.1"
	_, err = opts.PushBundle(ctx, next, filepath.Join(dir, "release-0.1.1", "bundle"), refs.Operator)
	g.Expect(err).NotTo(HaveOccurred())
	player := &olmpods.Player{Client: k8s, OPM: filepath.Join(tools, "opm"), Kubeconfig: lc.Kubeconfig,
		Dir: filepath.Join(dir, "olmpods"), Remote: pull, Log: os.Stderr}
	return &pushed{reg: reg, refs: refs, binary: extractManager(t, refs.Operator, pull), player: player}
}

// labelNodesLinux gives the kwok Nodes the label OLM's unpack pods select.
func labelNodesLinux(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var nodes corev1.NodeList
	NewWithT(t).Expect(k8s.List(ctx, &nodes)).To(Succeed())
	for i := range nodes.Items {
		n := &nodes.Items[i]
		patch := client.MergeFrom(n.DeepCopy())
		n.Labels[corev1.LabelOSStable] = "linux"
		NewWithT(t).Expect(k8s.Patch(ctx, n, patch)).To(Succeed())
	}
}

// extractManager pulls the operator image and returns its /manager, extracted: the
// operator runs from the image's own file system, not from a go build.
func extractManager(t *testing.T, ref string, opts []remote.Option) string {
	t.Helper()
	g := NewWithT(t)
	dir, cf := pullImage(t, ref, opts...)
	g.Expect(cf.Config.Entrypoint).To(Equal([]string{"/manager"}))
	return filepath.Join(dir, "manager")
}

// pullImage pulls an image and extracts its file system into a directory of the
// test's, returning the directory and the image's configuration.
func pullImage(t *testing.T, ref string, opts ...remote.Option) (string, *v1.ConfigFile) {
	t.Helper()
	g := NewWithT(t)
	r, err := name.ParseReference(ref)
	g.Expect(err).NotTo(HaveOccurred())
	img, err := remote.Image(r, opts...)
	g.Expect(err).NotTo(HaveOccurred())
	dir := t.TempDir()
	g.Expect(ociimage.Extract(img, dir)).To(Succeed())
	cf, err := img.ConfigFile()
	g.Expect(err).NotTo(HaveOccurred())
	return dir, cf
}

// sdk runs operator-sdk against the cluster, trusting the loopback registry, and logs
// what it printed.
func sdk(t *testing.T, reg *registry.Registry, args ...string) {
	t.Helper()
	testkit.By(t, "operator-sdk "+strings.Join(args, " "))
	bin := filepath.Join(sdkTools(t), "operator-sdk")
	cmd := exec.Command(bin, append(args, "--kubeconfig", lc.Kubeconfig)...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+reg.TrustFile, "KUBECONFIG="+lc.Kubeconfig)
	out, err := cmd.CombinedOutput()
	t.Logf("$ operator-sdk %s\n%s", strings.Join(args, " "), out)
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "operator-sdk %v", args)
}

func sdkTools(t *testing.T) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	dir, err := script(root, "hack/operator-sdk-tools.sh")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return dir
}

// expectSDKCatalogsServed checks that every catalog operator-sdk wrote passed opm
// validate and was served: the Player records a failure otherwise.
func expectSDKCatalogsServed(t *testing.T, p *olmpods.Player) {
	t.Helper()
	var pods corev1.PodList
	NewWithT(t).Expect(k8s.List(context.Background(), &pods, client.InNamespace(runBundleNS))).To(Succeed())
	served := 0
	for _, pod := range pods.Items {
		if len(pod.Spec.Containers) == 1 && pod.Spec.Containers[0].Name == "registry-grpc" {
			NewWithT(t).Expect(p.Err("pod/" + pod.Name)).NotTo(HaveOccurred())
			NewWithT(t).Expect(p.Catalog(pod.Name)).NotTo(BeEmpty(), "the catalog of %s was served", pod.Name)
			served++
		}
	}
	NewWithT(t).Expect(served).To(BeNumerically(">", 0), "a registry pod of operator-sdk")
}

// expectCleanedUp waits until operator-sdk cleanup has removed the operator: no CSV,
// Subscription or CatalogSource left in the namespace.
func expectCleanedUp(t *testing.T) {
	t.Helper()
	testkit.By(t, "cleanup removed the CSV, the Subscription and the CatalogSource")
	ctx := context.Background()
	NewWithT(t).Eventually(func(g Gomega) {
		var csvs operatorsv1alpha1.ClusterServiceVersionList
		g.Expect(k8s.List(ctx, &csvs, client.InNamespace(runBundleNS))).To(Succeed())
		g.Expect(csvs.Items).To(BeEmpty())
		var subs operatorsv1alpha1.SubscriptionList
		g.Expect(k8s.List(ctx, &subs, client.InNamespace(runBundleNS))).To(Succeed())
		g.Expect(subs.Items).To(BeEmpty())
		var sources operatorsv1alpha1.CatalogSourceList
		g.Expect(k8s.List(ctx, &sources, client.InNamespace(runBundleNS))).To(Succeed())
		g.Expect(sources.Items).To(BeEmpty())
	}, olmTimeout, interval).Should(Succeed())
}

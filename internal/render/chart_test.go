package render

import (
	"io"
	"testing"

	. "github.com/onsi/gomega"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

const chartPath = "../../helm-charts/bitcoin-network"

// helmTemplate renders the chart from its directory as `helm template` does.
func helmTemplate(t *testing.T, release, namespace string, values map[string]any) string {
	t.Helper()
	chrt, err := loader.Load(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = release, namespace
	rel, err := install.Run(chrt, values)
	if err != nil {
		t.Fatal(err)
	}
	return rel.Manifest
}

func TestChartLintIsClean(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"signet":   {"chain": "signet", "nodes": 5},
	} {
		t.Run(name, func(t *testing.T) {
			linter := lint.All(chartPath, values, "default", false)
			for _, m := range linter.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

func TestHelmTemplateAloneRendersAUsableNetwork(t *testing.T) {
	g := NewWithT(t)
	objs, err := Decode(helmTemplate(t, "standalone", "default", map[string]any{"nodes": 2}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*objs.StatefulSet.Spec.Replicas).To(BeEquivalentTo(2))
	g.Expect(*objs.StatefulSet.Spec.ServiceName).To(Equal(*objs.Service.Name))
	g.Expect(objs.StatefulSet.Spec.Template.Labels).To(HaveKeyWithValue(LabelManagedBy, "Helm"))
	g.Expect(objs.Service.Spec.Selector).To(Equal(objs.StatefulSet.Spec.Selector.MatchLabels))
}

// The operator renders exactly what `helm template` renders with the same values.
func TestOperatorRendersWhatHelmTemplateRenders(t *testing.T) {
	n := network("parity", 4, bitcoinv1alpha1.Testnet4)
	n.Spec.Image = "example.org/bitcoin:29.0"
	n.Spec.Storage = resource.NewQuantity(20<<30, resource.BinarySI)
	n.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}
	full := Settings{RPCAuth: testRPCAuth, RPCAllowIP: "10.0.0.0/8", RPCFrom: operatorPods}
	for name, tc := range map[string]struct {
		n *bitcoinv1alpha1.BitcoinNetwork
		s Settings
	}{"defaults": {network("plain", 3, ""), Settings{}}, "full spec and settings": {n, full}} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			fromHelm, err := Decode(helmTemplate(t, tc.n.Name, tc.n.Namespace, Values(tc.n, tc.s)))
			g.Expect(err).NotTo(HaveOccurred())
			fromOperator, err := mustRenderer(t).Render(tc.n, tc.s)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(fromOperator).To(Equal(fromHelm))
		})
	}
}

package render

import (
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func network(name string, nodes int32, chain bitcoinv1alpha1.Chain) *bitcoinv1alpha1.BitcoinNetwork {
	return &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns1"},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: nodes, Chain: chain},
	}
}

func mustRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRender(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork) *Objects {
	t.Helper()
	objs, err := mustRenderer(t).Render(n, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func bitcoind(sts *appsv1ac.StatefulSetApplyConfiguration) *corev1Container {
	c := sts.Spec.Template.Spec.Containers[0]
	return &corev1Container{Name: *c.Name, Command: c.Command, Args: c.Args, Probe: c.ReadinessProbe.Exec.Command}
}

type corev1Container struct {
	Name                 string
	Command, Args, Probe []string
}

func TestRenderNamesTheObjectsAsTheSeed(t *testing.T) {
	g := NewWithT(t)
	objs := mustRender(t, network("net", 3, bitcoinv1alpha1.Regtest))

	g.Expect(*objs.StatefulSet.Name).To(Equal("net-sts"))
	g.Expect(*objs.StatefulSet.Namespace).To(Equal("ns1"))
	g.Expect(*objs.StatefulSet.Spec.ServiceName).To(Equal("net-svc"))
	g.Expect(*objs.StatefulSet.Spec.Replicas).To(BeEquivalentTo(3))
	g.Expect(string(*objs.StatefulSet.Spec.PodManagementPolicy)).To(Equal("OrderedReady"))
	g.Expect(*objs.Service.Name).To(Equal("net-svc"))
	g.Expect(*objs.Service.Spec.ClusterIP).To(Equal("None"))
}

func TestRenderReadinessProbeUsesTheCookieFile(t *testing.T) {
	g := NewWithT(t)
	probe := mustRender(t, network("net", 1, bitcoinv1alpha1.Regtest)).StatefulSet.Spec.Template.Spec.Containers[0].ReadinessProbe

	g.Expect(probe.Exec.Command).To(Equal([]string{"bitcoin-cli", "-chain=regtest", "-datadir=/data", "-rpcport=18443", "getnetworkinfo"}))
	g.Expect(strings.Join(probe.Exec.Command, " ")).NotTo(ContainSubstring("password"))
	g.Expect([]int32{*probe.InitialDelaySeconds, *probe.PeriodSeconds, *probe.FailureThreshold, *probe.SuccessThreshold, *probe.TimeoutSeconds}).
		To(Equal([]int32{10, 10, 3, 1, 1}))
}

func TestRenderUsesEachChainsDefaultPorts(t *testing.T) {
	for chain, ports := range map[bitcoinv1alpha1.Chain][2]int32{
		bitcoinv1alpha1.Regtest:  {18443, 18444},
		bitcoinv1alpha1.Signet:   {38332, 38333},
		bitcoinv1alpha1.Testnet4: {48332, 48333},
	} {
		t.Run(string(chain), func(t *testing.T) {
			g := NewWithT(t)
			objs := mustRender(t, network("net", 1, chain))
			c := objs.StatefulSet.Spec.Template.Spec.Containers[0]
			g.Expect(*c.Ports[0].ContainerPort).To(Equal(ports[0]))
			g.Expect(*c.Ports[1].ContainerPort).To(Equal(ports[1]))
			g.Expect(*objs.Service.Spec.Ports[0].Port).To(Equal(ports[0]))
			g.Expect(*objs.Service.Spec.Ports[1].Port).To(Equal(ports[1]))
			g.Expect(c.Args).To(ContainElement("-chain=" + string(chain)))
			g.Expect(c.ReadinessProbe.Exec.Command).To(ContainElement("-chain=" + string(chain)))
		})
	}
}

func TestRenderPutsNetworkOptionsWhereBitcoinCoreReadsThem(t *testing.T) {
	for _, chain := range []bitcoinv1alpha1.Chain{bitcoinv1alpha1.Regtest, bitcoinv1alpha1.Signet, bitcoinv1alpha1.Testnet4} {
		t.Run(string(chain), func(t *testing.T) {
			g := NewWithT(t)
			sts := mustRender(t, network("net", 1, chain)).StatefulSet
			g.Expect(bitcoinConfFiles(sts)).To(BeEmpty(), "a bitcoin.conf would need a [%s] section for these options", chain)
			c := bitcoind(sts)
			g.Expect(c.Command).To(Equal([]string{"bitcoind"}))
			opts := options(c.Args)
			for _, name := range []string{"chain", "rpcport", "rpcbind", "rpcallowip", "port", "bind", "server", "datadir"} {
				g.Expect(opts).To(HaveKey(name), "bitcoind needs -%s on its command line", name)
			}
			// Bitcoin Core ignores -rpcbind unless -rpcallowip is set too.
			g.Expect(opts["rpcallowip"]).NotTo(BeEmpty())
		})
	}
}

// options parses bitcoind's command line as Bitcoin Core's ArgsManager does: -name=value.
func options(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		m[name] = value
	}
	return m
}

// bitcoinConfFiles lists the mounts and arguments that would hand bitcoind a
// configuration file: -conf, or a volume mounted where bitcoind looks for bitcoin.conf.
func bitcoinConfFiles(sts *appsv1ac.StatefulSetApplyConfiguration) []string {
	var found []string
	for _, a := range sts.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "-conf=") {
			found = append(found, a)
		}
	}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			found = append(found, *v.Name)
		}
	}
	return found
}

func TestRenderMeetsTheRestrictedPodSecurityStandard(t *testing.T) {
	g := NewWithT(t)
	pod := mustRender(t, network("net", 1, bitcoinv1alpha1.Regtest)).StatefulSet.Spec.Template.Spec
	g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(*pod.SecurityContext.RunAsUser).To(BeNumerically(">", 0))
	g.Expect(string(*pod.SecurityContext.SeccompProfile.Type)).To(Equal("RuntimeDefault"))
	for _, c := range pod.Containers {
		g.Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
		g.Expect(c.SecurityContext.Capabilities.Drop).To(Equal([]corev1.Capability{"ALL"}))
	}
}

func TestRenderKeepsVersionLabelsOutOfPodsAndSelector(t *testing.T) {
	g := NewWithT(t)
	sts := mustRender(t, network("net", 1, bitcoinv1alpha1.Regtest)).StatefulSet
	for _, labels := range []map[string]string{sts.Spec.Template.Labels, sts.Spec.Selector.MatchLabels} {
		for key, value := range labels {
			g.Expect(key).NotTo(BeElementOf("app.kubernetes.io/version", "helm.sh/chart"))
			g.Expect(value).NotTo(ContainSubstring("0.1.0"))
		}
	}
	g.Expect(sts.Labels).To(HaveKey("app.kubernetes.io/version"))
	g.Expect(sts.Spec.Template.Labels).To(HaveKeyWithValue(LabelManagedBy, ManagedBy))
	g.Expect(sts.Spec.Template.Labels).To(HaveKeyWithValue(LabelInstance, "net"))
}

func TestRenderTakesImageStorageAndResourcesFromTheSpec(t *testing.T) {
	g := NewWithT(t)
	n := network("net", 2, bitcoinv1alpha1.Signet)
	n.Spec.Image = "example.org/bitcoin:29.0"
	n.Spec.Storage = resource.NewQuantity(5<<30, resource.BinarySI)
	n.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	sts := mustRender(t, n).StatefulSet

	c := sts.Spec.Template.Spec.Containers[0]
	g.Expect(*c.Image).To(Equal("example.org/bitcoin:29.0"))
	g.Expect(*c.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
	g.Expect(c.Resources.Requests).To(BeNil(), "limits alone must not keep the chart's default requests")
	g.Expect((*sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests)[corev1.ResourceStorage]).To(Equal(resource.MustParse("5Gi")))
}

func TestRenderDefaultsWhenTheSpecIsSilent(t *testing.T) {
	g := NewWithT(t)
	sts := mustRender(t, network("net", 0, "")).StatefulSet
	c := sts.Spec.Template.Spec.Containers[0]
	g.Expect(*c.Image).To(Equal(bitcoinv1alpha1.DefaultImage))
	g.Expect(*sts.Spec.Replicas).To(BeZero())
	g.Expect(c.Args).To(ContainElement("-chain=regtest"))
	g.Expect(*c.Resources.Requests).To(HaveKey(corev1.ResourceCPU))
	g.Expect(slices.ContainsFunc(sts.Spec.Template.Spec.Containers[0].VolumeMounts, func(m corev1ac.VolumeMountApplyConfiguration) bool {
		return *m.MountPath == "/data"
	})).To(BeTrue())
}

func TestDecodeRejectsWhatTheOperatorDoesNotApply(t *testing.T) {
	g := NewWithT(t)
	_, err := Decode("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	g.Expect(err).To(MatchError(ContainSubstring("v1/ConfigMap")))
	_, err = Decode("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n")
	g.Expect(err).To(MatchError(ContainSubstring("clusterIp")))
	_, err = Decode("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n")
	g.Expect(err).To(MatchError(ContainSubstring("no StatefulSet")))
}

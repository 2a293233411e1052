// Package render turns a BitcoinNetwork into the objects of the bitcoin-network Helm
// chart: values from the spec, the chart rendered by the Helm v3 engine exactly as
// `helm template` would, and the result decoded into typed apply configurations for
// server-side apply. The chart is the workload's only definition; nothing here builds
// a Kubernetes object by hand.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	helmcharts "github.com/bitcoinops/bitcoin-operator/helm-charts"
)

// ManagedBy is the app.kubernetes.io/managed-by label value of the objects and pods the
// operator renders (plain Helm renders "Helm"). The operator's caches select on it.
const ManagedBy = "bitcoin-operator"

// Labels the chart puts on every object and pod; the operator reads them.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelInstance  = "app.kubernetes.io/instance" // the network's name
)

const chartDir = "bitcoin-network"

// Objects are the objects the chart renders for one network.
type Objects struct {
	StatefulSet *appsv1ac.StatefulSetApplyConfiguration
	Service     *corev1ac.ServiceApplyConfiguration
	// NetworkPolicy is nil when the chart's networkPolicy.enabled is false.
	NetworkPolicy *networkingv1ac.NetworkPolicyApplyConfiguration
}

// Settings are the chart values that come from the operator rather than from a
// network's spec.
type Settings struct {
	// RPCAuth is the nodes' -rpcauth entry; empty renders none.
	RPCAuth string
	// RPCAllowIP is bitcoind's -rpcallowip; empty keeps the chart's default.
	RPCAllowIP string
	// RPCFrom are the NetworkPolicyPeers admitted to the nodes' RPC port, as chart
	// values: the operator's own pods.
	RPCFrom []map[string]any
}

// Renderer renders the embedded chart. It is safe for concurrent use.
type Renderer struct {
	chart *chart.Chart
	ports sync.Map // Chain to Ports
}

// Ports are the TCP ports a chain's nodes listen on.
type Ports struct{ RPC, P2P int32 }

// NewRenderer parses the chart embedded in the binary. Call it once.
func NewRenderer() (*Renderer, error) {
	c, err := loadChart(helmcharts.BitcoinNetwork, chartDir)
	if err != nil {
		return nil, fmt.Errorf("failed to load the embedded %s chart: %w", chartDir, err)
	}
	return &Renderer{chart: c}, nil
}

// Values returns the chart values for a network: what its spec and the operator's
// settings set. Everything else keeps the chart's defaults.
func Values(n *bitcoinv1alpha1.BitcoinNetwork, s Settings) map[string]any {
	v := map[string]any{"managedBy": ManagedBy, "nodes": int64(n.Spec.Nodes)}
	if s.RPCAuth != "" {
		v["rpcAuth"] = s.RPCAuth
	}
	if s.RPCAllowIP != "" {
		v["rpcAllowIP"] = s.RPCAllowIP
	}
	if len(s.RPCFrom) > 0 {
		from := make([]any, len(s.RPCFrom))
		for i, peer := range s.RPCFrom {
			from[i] = peer
		}
		v["networkPolicy"] = map[string]any{"rpcFrom": from}
	}
	if n.Spec.Image != "" {
		v["image"] = n.Spec.Image
	}
	if n.Spec.Chain != "" {
		v["chain"] = string(n.Spec.Chain)
	}
	if n.Spec.Storage != nil {
		v["storage"] = n.Spec.Storage.String()
	}
	if r := n.Spec.Resources; r != nil {
		v["resources"] = resourcesValue(r.Limits, r.Requests)
	}
	if p := n.Spec.PodManagementPolicy; p != "" {
		v["podManagementPolicy"] = string(p)
	}
	if p := retentionValue(n.Spec.PersistentVolumeClaimRetentionPolicy); p != nil {
		v["persistentVolumeClaimRetentionPolicy"] = p
	}
	return v
}

// Render renders the chart for a network and decodes its objects. Its errors are
// *Error: safe to log and to show, whatever the values hold.
func (r *Renderer) Render(n *bitcoinv1alpha1.BitcoinNetwork, s Settings) (*Objects, error) {
	values := Values(n, s)
	top, err := chartutil.ToRenderValues(r.chart, values,
		chartutil.ReleaseOptions{Name: n.Name, Namespace: n.Namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, schemaError(err, values)
	}
	files, err := engine.Engine{Strict: true}.Render(r.chart, top)
	if err != nil {
		return nil, redacted(fmt.Errorf("failed to render the %s chart: %w", chartDir, err), s.RPCAuth)
	}
	var manifests []string
	for _, name := range sortedKeys(files) {
		if strings.HasSuffix(name, ".yaml") { // not NOTES.txt or _helpers.tpl
			manifests = append(manifests, files[name])
		}
	}
	objs, err := Decode(manifests...)
	if err != nil {
		return nil, redacted(err, s.RPCAuth)
	}
	return objs, nil
}

// Ports returns the RPC and P2P ports of a chain's nodes, read from the container
// ports the chart renders for it, so that the chart stays their only definition.
func (r *Renderer) Ports(chain bitcoinv1alpha1.Chain) (Ports, error) {
	if p, ok := r.ports.Load(chain); ok {
		return p.(Ports), nil
	}
	n := &bitcoinv1alpha1.BitcoinNetwork{Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Chain: chain}}
	n.Name, n.Namespace = "ports", "ports"
	objs, err := r.Render(n, Settings{})
	if err != nil {
		return Ports{}, err
	}
	var p Ports
	for _, port := range objs.StatefulSet.Spec.Template.Spec.Containers[0].Ports {
		switch *port.Name {
		case "rpc":
			p.RPC = *port.ContainerPort
		case "p2p":
			p.P2P = *port.ContainerPort
		}
	}
	if p.RPC == 0 || p.P2P == 0 {
		return Ports{}, fmt.Errorf("the chart renders no container ports named rpc and p2p for chain %q", chain)
	}
	r.ports.Store(chain, p)
	return p, nil
}

// Decode decodes rendered manifests, each of one or more YAML documents, into Objects.
// Unknown fields, unknown kinds and a missing object are errors: they mean the chart
// and this package disagree.
func Decode(manifests ...string) (*Objects, error) {
	objs := &Objects{}
	for i, m := range manifests {
		docs := releaseutil.SplitManifests(m)
		for _, key := range sortedKeys(docs) {
			if err := objs.add(fmt.Sprintf("manifest %d, %s", i, key), docs[key]); err != nil {
				return nil, err
			}
		}
	}
	if objs.StatefulSet == nil || objs.Service == nil {
		return nil, errors.New("the chart rendered no StatefulSet or no Service")
	}
	return objs, nil
}

func (o *Objects) add(file, doc string) error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	switch gvk := meta.APIVersion + "/" + meta.Kind; gvk {
	case "":
		return nil // an empty document
	case "apps/v1/StatefulSet":
		o.StatefulSet = &appsv1ac.StatefulSetApplyConfiguration{}
		return decodeStrict(file, doc, o.StatefulSet)
	case "v1/Service":
		o.Service = &corev1ac.ServiceApplyConfiguration{}
		return decodeStrict(file, doc, o.Service)
	case "networking.k8s.io/v1/NetworkPolicy":
		o.NetworkPolicy = &networkingv1ac.NetworkPolicyApplyConfiguration{}
		return decodeStrict(file, doc, o.NetworkPolicy)
	default:
		return fmt.Errorf("%s: the chart rendered %s, which the operator does not apply", file, gvk)
	}
}

// decodeStrict decodes as the API server does: field names are case-sensitive, and
// unknown or duplicate fields are errors.
func decodeStrict(file, doc string, into runtime.ApplyConfiguration) error {
	data, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(data, into)
	if err = errors.Join(append(strictErrs, err)...); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// loadChart reads a chart from a directory of a file system.
func loadChart(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, dir+"/")
		files = append(files, &loader.BufferedFile{Name: path.Clean(rel), Data: bytes.Clone(data)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

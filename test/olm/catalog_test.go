//go:build olm

package olm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bitcoinops/bitcoin-operator/internal/fbc"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// The CatalogSources in the olm namespace: one that serves the bundle of bundle/, and
// one that also serves a 0.1.1 that replaces it.
const (
	installCatalog = "bitcoin-install"
	upgradeCatalog = "bitcoin-upgrade"
)

// serveCatalogs renders the catalogs from bundle/ with the manifests inline (OLM reads
// a bundle image with a pod that unpacks it, which kwok cannot run), validates them
// with opm, serves each with `opm serve` on a loopback port, and waits until OLM has
// connected to each through a CatalogSource.
func serveCatalogs(ctx context.Context, root string) error {
	opm := filepath.Join(tools, "opm")
	bundleDir := filepath.Join(root, "bundle")
	meta, err := fbc.ReadMetadata(bundleDir)
	if err != nil {
		return err
	}
	channel = meta.DefaultChannel
	v010, err := fbc.Render(ctx, opm, bundleDir, "", true)
	if err != nil {
		return err
	}
	next, err := bumpedBundle(bundleDir, filepath.Join(lc.Dir, "bundle-0.1.1"), "0.1.1", csv011, csv010)
	if err != nil {
		return err
	}
	v011, err := fbc.Render(ctx, opm, next, "", true)
	if err != nil {
		return err
	}
	for name, bundles := range map[string][]fbc.Bundle{installCatalog: {v010}, upgradeCatalog: {v010, v011}} {
		dir := filepath.Join(lc.Dir, "catalogs", name)
		var buf bytes.Buffer
		if err := (fbc.Catalog{Metadata: meta, Bundles: bundles}).Write(&buf); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, packageName), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, packageName, "catalog.yaml"), buf.Bytes(), 0o644); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, opm, "validate", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("opm validate %s: %w: %s", dir, err, out)
		}
		port := cluster.FreePort()
		if _, err := lc.StartProcess("opm-"+name, opm, []string{
			"serve", dir, "--port", fmt.Sprint(port), fmt.Sprintf("--pprof-addr=127.0.0.1:%d", cluster.FreePort()),
		}); err != nil {
			return err
		}
		if err := k8s.Create(ctx, &operatorsv1alpha1.CatalogSource{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: olmNamespace},
			Spec: operatorsv1alpha1.CatalogSourceSpec{
				SourceType:  operatorsv1alpha1.SourceTypeGrpc,
				Address:     fmt.Sprintf("127.0.0.1:%d", port),
				DisplayName: "bitcoin-operator (" + name + ")",
				Publisher:   "bitcoin-operator tests",
			},
		}); err != nil {
			return err
		}
	}
	return cluster.Poll(ctx, olmTimeout, "the CatalogSources to be READY", func() (bool, error) {
		for _, name := range []string{installCatalog, upgradeCatalog} {
			cs := &operatorsv1alpha1.CatalogSource{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: olmNamespace, Name: name}, cs); err != nil {
				return false, err
			}
			if cs.Status.GRPCConnectionState == nil || cs.Status.GRPCConnectionState.LastObservedState != "READY" {
				return false, nil
			}
		}
		return true, nil
	})
}

// bumpedBundle copies a bundle directory with its CSV renamed to name, at version,
// replacing replaces: the next release of the same operator.
func bumpedBundle(from, to, version, name, replaces string) (string, error) {
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		return "", err
	}
	path := filepath.Join(to, "manifests", packageName+".clusterserviceversion.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var csv map[string]any
	if err := yaml.Unmarshal(data, &csv); err != nil {
		return "", err
	}
	csv["metadata"].(map[string]any)["name"] = name
	spec := csv["spec"].(map[string]any)
	spec["version"] = version
	spec["replaces"] = replaces
	if data, err = yaml.Marshal(csv); err != nil {
		return "", err
	}
	return to, os.WriteFile(path, data, 0o644)
}

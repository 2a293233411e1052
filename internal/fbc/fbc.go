// Package fbc writes file-based catalogs (olm.package, olm.channel, olm.bundle) for
// the operator's bundle, from what operator-registry's `opm render` makes of a bundle
// directory. `make catalog` writes the users' catalog, whose bundles name their image;
// test/olm writes one whose bundles carry their manifests inline, since OLM cannot
// unpack a bundle image without a container runtime.
package fbc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Bundle is one olm.bundle blob as opm renders it.
type Bundle map[string]any

// Name is the bundle's name, its CSV's.
func (b Bundle) Name() string { s, _ := b["name"].(string); return s }

// Metadata is what a bundle's metadata/annotations.yaml says about its package.
type Metadata struct {
	Package        string
	Channels       []string
	DefaultChannel string
}

// ReadMetadata reads a bundle directory's metadata/annotations.yaml.
func ReadMetadata(bundleDir string) (Metadata, error) {
	data, err := os.ReadFile(filepath.Join(bundleDir, "metadata", "annotations.yaml"))
	if err != nil {
		return Metadata{}, err
	}
	var file struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return Metadata{}, fmt.Errorf("failed to read the bundle's annotations: %w", err)
	}
	a := file.Annotations
	m := Metadata{Package: a["operators.operatorframework.io.bundle.package.v1"],
		DefaultChannel: a["operators.operatorframework.io.bundle.channel.default.v1"]}
	for _, c := range strings.Split(a["operators.operatorframework.io.bundle.channels.v1"], ",") {
		if c = strings.TrimSpace(c); c != "" {
			m.Channels = append(m.Channels, c)
		}
	}
	if m.Package == "" || len(m.Channels) == 0 {
		return Metadata{}, fmt.Errorf("%s names no package or no channel", bundleDir)
	}
	if m.DefaultChannel == "" {
		m.DefaultChannel = m.Channels[0]
	}
	return m, nil
}

// Render runs `opm render` on a bundle directory. Inline keeps the manifests in the
// bundle as olm.bundle.object properties, for a catalog without images; otherwise the
// bundle names its image, and opm migrates the manifests to the one olm.csv.metadata
// property that catalogs of bundle images carry: OLM reads the manifests from the
// image.
func Render(ctx context.Context, opm, bundleDir, image string, inline bool) (Bundle, error) {
	b, err := render(ctx, opm, bundleDir)
	if err != nil || inline {
		return b, err
	}
	// opm migrates only bundles with an image, and a bundle directory has none: name
	// it, and render the result again, as a catalog directory.
	b["image"] = image
	dir, err := os.MkdirTemp("", "fbc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	data, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.json"), data, 0o644); err != nil {
		return nil, err
	}
	return render(ctx, opm, dir, "--migrate-level=bundle-object-to-csv-metadata")
}

// render runs `opm render` on one bundle or catalog directory that holds one bundle.
func render(ctx context.Context, opm, dir string, args ...string) (Bundle, error) {
	cmd := exec.CommandContext(ctx, opm, append([]string{"render", dir, "--output=json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("opm render %s: %w: %s", dir, err, stderr.String())
	}
	var b Bundle
	if err := json.Unmarshal(out, &b); err != nil {
		return nil, fmt.Errorf("failed to read what opm render wrote: %w", err)
	}
	if b["schema"] != "olm.bundle" {
		return nil, fmt.Errorf("opm render %s wrote a %v, not one olm.bundle", dir, b["schema"])
	}
	if b["image"] == "" {
		delete(b, "image") // OLM reads the olm.bundle.object properties instead
	}
	return b, nil
}

// Catalog is one package's catalog: every channel lists the bundles in upgrade order,
// each replacing the one before it.
type Catalog struct {
	Metadata Metadata
	Bundles  []Bundle
}

// Write writes the catalog as a stream of YAML documents, the package first.
func (c Catalog) Write(w io.Writer) error {
	blobs := []any{map[string]any{
		"schema": "olm.package", "name": c.Metadata.Package, "defaultChannel": c.Metadata.DefaultChannel,
	}}
	// Every channel holds the same upgrade chain: each bundle replaces the one before.
	var entries []map[string]any
	for i, b := range c.Bundles {
		entry := map[string]any{"name": b.Name()}
		if i > 0 {
			entry["replaces"] = c.Bundles[i-1].Name()
		}
		entries = append(entries, entry)
	}
	for _, ch := range c.Metadata.Channels {
		blobs = append(blobs, map[string]any{"schema": "olm.channel", "package": c.Metadata.Package, "name": ch, "entries": entries})
	}
	for _, b := range c.Bundles {
		blobs = append(blobs, b)
	}
	for _, blob := range blobs {
		data, err := yaml.Marshal(blob)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", data); err != nil {
			return err
		}
	}
	return nil
}

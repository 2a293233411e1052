package fbc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

func TestCatalogChainsBundlesInEveryChannel(t *testing.T) {
	g := NewWithT(t)
	c := Catalog{
		Metadata: Metadata{Package: "p", Channels: []string{"stable-v0", "fast-v0"}, DefaultChannel: "stable-v0"},
		Bundles:  []Bundle{{"schema": "olm.bundle", "name": "p.v1"}, {"schema": "olm.bundle", "name": "p.v2"}},
	}
	var buf bytes.Buffer
	g.Expect(c.Write(&buf)).To(Succeed())

	var blobs []map[string]any
	for _, doc := range strings.Split(buf.String(), "---\n")[1:] {
		var blob map[string]any
		g.Expect(yaml.Unmarshal([]byte(doc), &blob)).To(Succeed())
		blobs = append(blobs, blob)
	}
	g.Expect(blobs).To(HaveLen(5))
	g.Expect(blobs[0]).To(Equal(map[string]any{"schema": "olm.package", "name": "p", "defaultChannel": "stable-v0"}))
	entries := []any{map[string]any{"name": "p.v1"}, map[string]any{"name": "p.v2", "replaces": "p.v1"}}
	g.Expect(blobs[1]).To(Equal(map[string]any{"schema": "olm.channel", "package": "p", "name": "stable-v0", "entries": entries}))
	g.Expect(blobs[2]).To(HaveKeyWithValue("name", "fast-v0"))
	g.Expect(blobs[2]).To(HaveKeyWithValue("entries", entries))
	g.Expect(blobs[3]).To(HaveKeyWithValue("name", "p.v1"))
	g.Expect(blobs[4]).To(HaveKeyWithValue("name", "p.v2"))
}

func TestReadMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, annotations string
		want              Metadata
		wantErr           bool
	}{
		{"channels and default", "package.v1: p\n  operators.operatorframework.io.bundle.channels.v1: stable-v0, fast-v0\n  operators.operatorframework.io.bundle.channel.default.v1: fast-v0",
			Metadata{Package: "p", Channels: []string{"stable-v0", "fast-v0"}, DefaultChannel: "fast-v0"}, false},
		{"the first channel is the default", "package.v1: p\n  operators.operatorframework.io.bundle.channels.v1: stable-v0",
			Metadata{Package: "p", Channels: []string{"stable-v0"}, DefaultChannel: "stable-v0"}, false},
		{"no channel", "package.v1: p", Metadata{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			dir := t.TempDir()
			g.Expect(os.MkdirAll(filepath.Join(dir, "metadata"), 0o755)).To(Succeed())
			data := "annotations:\n  operators.operatorframework.io.bundle." + tc.annotations + "\n"
			g.Expect(os.WriteFile(filepath.Join(dir, "metadata", "annotations.yaml"), []byte(data), 0o644)).To(Succeed())
			got, err := ReadMetadata(dir)
			if tc.wantErr {
				g.Expect(err).To(HaveOccurred())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

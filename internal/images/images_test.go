package images_test

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bitcoinops/bitcoin-operator/internal/images"
	"github.com/bitcoinops/bitcoin-operator/internal/ociimage"
)

// The repository's top directory, where the Dockerfiles and bundle/ are.
const root = "../.."

// built is every image, built twice from the same inputs.
func built(t *testing.T) map[string][2]v1.Image {
	t.Helper()
	catalog := t.TempDir()
	writeFile(t, filepath.Join(catalog, "bitcoin-operator", "catalog.yaml"), "---\nschema: olm.package\nname: bitcoin-operator\n")
	out := map[string][2]v1.Image{}
	for i := range 2 {
		op, err := images.Operator([]byte("the manager binary"))
		must(t, err)
		bundle, err := images.Bundle(filepath.Join(root, "bundle"))
		must(t, err)
		opm, err := images.OPM([]byte("the opm binary"))
		must(t, err)
		cat, err := images.Catalog(opm, catalog)
		must(t, err)
		for name, img := range map[string]v1.Image{"operator": op, "bundle": bundle, "opm": opm, "catalog": cat} {
			pair := out[name]
			pair[i] = img
			out[name] = pair
		}
	}
	return out
}

func TestReproducible(t *testing.T) {
	for name, pair := range built(t) {
		a, err := pair[0].Digest()
		must(t, err)
		b, err := pair[1].Digest()
		must(t, err)
		if a != b {
			t.Errorf("%s: two builds from the same inputs differ: %s, %s", name, a, b)
		}
		cf, err := pair[0].ConfigFile()
		must(t, err)
		if !cf.Created.Time.Equal(ociimage.Epoch) {
			t.Errorf("%s: created at %s, not at the fixed epoch", name, cf.Created)
		}
	}
}

func TestOperatorRunsAsNonRoot(t *testing.T) {
	img := built(t)["operator"][0]
	files, err := ociimage.Files(img)
	must(t, err)
	passwd := string(files["/etc/passwd"].Data)
	if !strings.Contains(passwd, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd names no nonroot user 65532:\n%s", passwd)
	}
	if f := files["/manager"]; ociimage.Perm(f) != 0o755 || f.UID != 0 {
		t.Errorf("/manager: mode %v, owner %d: want 0755, root-owned (the non-root user cannot replace it)", f.Mode, f.UID)
	}
	if f := files["/tmp"]; !f.Dir || ociimage.Perm(f) != 0o777|os.ModeSticky {
		t.Errorf("/tmp: %+v, want a world-writable sticky directory", f)
	}
}

// TestCatalogHasNoServeCache: opm builds its cache when it starts, into a temporary
// directory of the opm image's /tmp, which must stay world-writable; a pre-built cache
// would make the digest vary (its pogreb index has a random seed).
func TestCatalogHasNoServeCache(t *testing.T) {
	files, err := ociimage.Files(built(t)["catalog"][0])
	must(t, err)
	if f := files["/tmp"]; ociimage.Perm(f) != 0o777|os.ModeSticky {
		t.Errorf("/tmp has mode %v", f.Mode)
	}
	if got := under(files, "/tmp"); len(got) != 0 {
		t.Errorf("/tmp holds %v", slices.Sorted(maps.Keys(got)))
	}
	if got := under(files, "/configs"); len(got) != 1 {
		t.Errorf("/configs holds %v, want the catalog", slices.Sorted(maps.Keys(got)))
	}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(data), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// under lists the regular files of an image under dir, relative to it.
func under(files map[string]ociimage.File, dir string) map[string]string {
	out := map[string]string{}
	for p, f := range files {
		if rel, ok := strings.CutPrefix(p, path.Clean(dir)+"/"); ok && !f.Dir {
			out[rel] = string(f.Data)
		}
	}
	return out
}

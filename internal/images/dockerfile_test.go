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

	"github.com/bitcoinops/bitcoin-operator/internal/dockerfile"
	"github.com/bitcoinops/bitcoin-operator/internal/ociimage"
)

// TestDockerfilesDescribeTheBuiltImages compares each Dockerfile, kept for users with
// Docker, with the image built here: entrypoint, command, user, working directory and
// labels, and every path it copies.
func TestDockerfilesDescribeTheBuiltImages(t *testing.T) {
	imgs := built(t)
	for _, tc := range []struct{ dockerfile, image string }{
		{"Dockerfile", "operator"},
		{"bundle.Dockerfile", "bundle"},
		{"catalog.Dockerfile", "catalog"},
	} {
		t.Run(tc.dockerfile, func(t *testing.T) {
			st := parse(t, tc.dockerfile)
			img := imgs[tc.image][0]
			compareConfig(t, st, img)
			files, err := ociimage.Files(img)
			must(t, err)
			for _, c := range st.Copies {
				compareCopy(t, st, c, files)
			}
			for _, run := range st.Runs {
				// Nothing runs while these images are built: what a RUN would leave
				// in the image is not in the built one.
				t.Errorf("RUN %q: the image built here runs nothing", run)
			}
		})
	}
}

func parse(t *testing.T, name string) *dockerfile.Stage {
	t.Helper()
	f, err := os.Open(filepath.Join(root, name))
	must(t, err)
	defer f.Close()
	st, err := dockerfile.Parse(f)
	must(t, err)
	return st
}

func compareConfig(t *testing.T, st *dockerfile.Stage, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	must(t, err)
	c := cf.Config
	if !slices.Equal(st.Entrypoint, c.Entrypoint) || !slices.Equal(st.Cmd, c.Cmd) {
		t.Errorf("entrypoint %q cmd %q, the Dockerfile says %q %q", c.Entrypoint, c.Cmd, st.Entrypoint, st.Cmd)
	}
	if st.User != c.User || workDir(st) != workDir(&dockerfile.Stage{WorkingDir: c.WorkingDir}) {
		t.Errorf("user %q workdir %q, the Dockerfile says %q %q", c.User, c.WorkingDir, st.User, st.WorkingDir)
	}
	if !maps.Equal(st.Labels, c.Labels) {
		t.Errorf("labels %v, the Dockerfile says %v", c.Labels, st.Labels)
	}
}

func workDir(st *dockerfile.Stage) string {
	if st.WorkingDir == "" {
		return "/"
	}
	return st.WorkingDir
}

// compareCopy checks one COPY: from the build context, the image holds exactly the
// source directory's files; from a builder stage (the manager binary), the file exists
// and is executable.
func compareCopy(t *testing.T, st *dockerfile.Stage, c dockerfile.Copy, files map[string]ociimage.File) {
	t.Helper()
	dest := c.Dest
	if !path.IsAbs(dest) {
		dest = path.Join(workDir(st), dest)
	}
	if c.From != "" {
		if strings.HasSuffix(c.Dest, "/") || c.Dest == "." {
			dest = path.Join(dest, path.Base(c.Src))
		}
		if f, ok := files[dest]; !ok || ociimage.Perm(f)&0o111 == 0 {
			t.Errorf("COPY --from=%s %s %s: the image has no executable %s", c.From, c.Src, c.Dest, dest)
		}
		return
	}
	want := map[string]string{}
	src := filepath.Join(root, filepath.FromSlash(c.Src))
	if filepath.Base(src) == "catalog" {
		src = catalogFixture(t) // catalog/ is written by make catalog; built() used a fixture
	}
	must(t, filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		want[filepath.ToSlash(rel)] = string(data)
		return err
	}))
	if got := under(files, dest); !maps.Equal(got, want) {
		t.Errorf("COPY %s %s: the image has %v under %s, the source %v", c.Src, c.Dest, slices.Sorted(maps.Keys(got)), dest, slices.Sorted(maps.Keys(want)))
	}
}

// catalogFixture is the catalog directory built() puts in the catalog image.
func catalogFixture(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bitcoin-operator", "catalog.yaml"), "---\nschema: olm.package\nname: bitcoin-operator\n")
	return dir
}

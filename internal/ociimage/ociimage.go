// Package ociimage builds container images without a daemon, reproducibly: the same
// files and configuration always give the same digest. Tar entries are sorted and carry
// a fixed time and owner unless told otherwise, and the image's creation time is fixed
// too, so nothing of the build machine or the clock reaches the image.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the time of every file and of the image itself: the Unix epoch, as
// reproducible-builds.org's SOURCE_DATE_EPOCH=0 would give.
var Epoch = time.Unix(0, 0).UTC()

// File is one entry of a layer. A File with Dir set is a directory; Data is ignored.
type File struct {
	Path     string // absolute, slash-separated, as in the image
	Mode     fs.FileMode
	Data     []byte
	Dir      bool
	UID, GID int
}

// Config is the part of an image's configuration a Dockerfile sets.
type Config struct {
	Entrypoint []string
	Cmd        []string
	User       string
	WorkingDir string
	Env        []string
	Labels     map[string]string
}

// Layer makes one layer of files, their parent directories added, in path order.
func Layer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range withParents(files) {
		if err := tw.WriteHeader(header(f)); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

func header(f File) *tar.Header {
	h := &tar.Header{
		Name: strings.TrimPrefix(f.Path, "/"), Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID,
		ModTime: Epoch, Format: tar.FormatPAX,
	}
	if f.Mode&fs.ModeSticky != 0 {
		h.Mode |= 0o1000 // /tmp's
	}
	if f.Dir {
		h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
	} else {
		h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
	}
	return h
}

// withParents returns files sorted by path, with a 0755 root-owned directory for
// every parent that files do not list themselves, so that tar readers need not invent
// them (each would do it differently).
func withParents(files []File) []File {
	seen := map[string]bool{}
	for _, f := range files {
		seen[path.Clean(f.Path)] = true
	}
	out := append([]File(nil), files...)
	for _, f := range files {
		for dir := path.Dir(path.Clean(f.Path)); dir != "/" && !seen[dir]; dir = path.Dir(dir) {
			seen[dir] = true
			out = append(out, File{Path: dir, Dir: true, Mode: 0o755})
		}
	}
	sort.Slice(out, func(i, j int) bool { return path.Clean(out[i].Path) < path.Clean(out[j].Path) })
	return out
}

// DirFiles reads the regular files and directories under src as Files under dst.
// Modes are normalised (0755 for directories and executables, 0644 otherwise), since a
// checkout's umask must not change the image.
func DirFiles(src, dst string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			files = append(files, File{Path: target, Dir: true, Mode: 0o755})
		case d.Type().IsRegular():
			f, err := readFile(p, target)
			if err != nil {
				return err
			}
			files = append(files, f)
		default:
			return fmt.Errorf("%s: only regular files and directories go into images", p)
		}
		return nil
	})
	return files, err
}

func readFile(src, target string) (File, error) {
	info, err := os.Stat(src)
	if err != nil {
		return File{}, err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return File{}, err
	}
	mode := fs.FileMode(0o644)
	if info.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	return File{Path: target, Mode: mode, Data: data}, nil
}

// Build makes an OCI image for linux on this machine's architecture from base (nil:
// an empty image), the given layers on top and cfg.
func Build(base v1.Image, cfg Config, layers ...v1.Layer) (v1.Image, error) {
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.Append(base, addenda(layers)...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: Epoch}
	applyConfig(&cf.Config, cfg)
	return mutate.ConfigFile(img, cf)
}

func addenda(layers []v1.Layer) []mutate.Addendum {
	var out []mutate.Addendum
	for _, l := range layers {
		out = append(out, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "bitcoin-operator ociimage"}})
	}
	return out
}

// applyConfig sets what cfg sets, keeping the base's values elsewhere, as the
// directives of a Dockerfile's stage override its FROM image's.
func applyConfig(c *v1.Config, cfg Config) {
	if cfg.Entrypoint != nil {
		c.Entrypoint = cfg.Entrypoint
		c.Cmd = nil // as Docker does: a new ENTRYPOINT resets the base's CMD
	}
	if cfg.Cmd != nil {
		c.Cmd = cfg.Cmd
	}
	if cfg.User != "" {
		c.User = cfg.User
	}
	if cfg.WorkingDir != "" {
		c.WorkingDir = cfg.WorkingDir
	}
	c.Env = append(c.Env, cfg.Env...)
	if len(cfg.Labels) > 0 && c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for k, v := range cfg.Labels {
		c.Labels[k] = v
	}
}

// Package publish builds the project's image set and pushes it to a registry: the
// operator image, the release bundle pinned to it by digest, its bundle image, the opm
// image and a catalog image of that bundle. `make images` and the run-bundle test use
// it, so what the test installs is what a release pushes.
package publish

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bitcoinops/bitcoin-operator/internal/fbc"
	"github.com/bitcoinops/bitcoin-operator/internal/images"
	"github.com/bitcoinops/bitcoin-operator/internal/release"
)

// Options say what to build and where to push it.
type Options struct {
	Registry string // host[/path] the images go under
	Version  string // the operator's; the images' tag is v<Version>
	OPM      string // a static opm binary for linux
	Bundle   string // the bundle directory
	Release  string // where the release bundle goes (<Release>/bundle)
	Root     string // the repository, whose ./cmd is the operator
	// Pins rewrite the RELATED_IMAGE_ variables' images in the release bundle, from a
	// reference by tag to one by digest; images without a pin stay by tag.
	Pins   map[string]string
	Remote []remote.Option
}

// Refs are the pushed images, by digest.
type Refs struct {
	Operator, Bundle, OPM, Catalog string
}

// All builds and pushes the operator image, the release bundle pinned to it by digest,
// its bundle image, the opm image and a catalog image of that bundle.
func All(ctx context.Context, o Options) (Refs, error) {
	var refs Refs
	tmp, err := os.MkdirTemp("", "images-")
	if err != nil {
		return refs, err
	}
	defer os.RemoveAll(tmp)
	if refs.Operator, err = o.push(ctx, "bitcoin-operator", func() (v1.Image, error) {
		bin, err := BuildManager(ctx, o.Root, tmp)
		if err != nil {
			return nil, err
		}
		return images.Operator(bin)
	}); err != nil {
		return refs, err
	}
	bundleDir := filepath.Join(o.Release, "bundle")
	if refs.Bundle, err = o.PushBundle(ctx, o.Bundle, bundleDir, refs.Operator); err != nil {
		return refs, err
	}
	opmImg, err := opmImage(o.OPM)
	if err != nil {
		return refs, err
	}
	if refs.OPM, err = o.push(ctx, "opm", func() (v1.Image, error) { return opmImg, nil }); err != nil {
		return refs, err
	}
	catalogDir := filepath.Join(tmp, "catalog")
	if err := WriteCatalog(ctx, o.OPM, bundleDir, refs.Bundle, catalogDir); err != nil {
		return refs, err
	}
	refs.Catalog, err = o.push(ctx, "bitcoin-operator-catalog", func() (v1.Image, error) {
		return images.Catalog(opmImg, catalogDir)
	})
	return refs, err
}

// PushBundle writes the release copy of the bundle directory src into dst, pinned to
// operatorRef, and pushes its bundle image tagged with o.Version.
func (o Options) PushBundle(ctx context.Context, src, dst, operatorRef string) (string, error) {
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	if _, err := release.PinBundle(src, dst, operatorRef, o.Pins); err != nil {
		return "", err
	}
	return o.push(ctx, "bitcoin-operator-bundle", func() (v1.Image, error) { return images.Bundle(dst) })
}

func (o Options) push(ctx context.Context, repo string, build func() (v1.Image, error)) (string, error) {
	return Push(ctx, o.Registry+"/"+repo+":v"+o.Version, build, o.Remote...)
}

// Push builds an image, pushes it as tag, and returns its reference by digest.
func Push(ctx context.Context, tag string, build func() (v1.Image, error), opts ...remote.Option) (string, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return "", err
	}
	img, err := build()
	if err != nil {
		return "", fmt.Errorf("building %s: %w", tag, err)
	}
	if err := remote.Write(ref, img, append(opts, remote.WithContext(ctx))...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", tag, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(digest.String()).String(), nil
}

// BuildManager builds the operator binary as the Dockerfile's builder stage does, and
// without the build ID, which would differ between machines.
func BuildManager(ctx context.Context, root, dir string) ([]byte, error) {
	out := filepath.Join(dir, "manager")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "./cmd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build ./cmd: %w", err)
	}
	return os.ReadFile(out)
}

func opmImage(opm string) (v1.Image, error) {
	bin, err := os.ReadFile(opm)
	if err != nil {
		return nil, err
	}
	return images.OPM(bin)
}

// WriteCatalog writes the file-based catalog of one bundle, named by its image, and
// has opm validate it.
func WriteCatalog(ctx context.Context, opm, bundleDir, bundleRef, dir string) error {
	meta, err := fbc.ReadMetadata(bundleDir)
	if err != nil {
		return err
	}
	b, err := fbc.Render(ctx, opm, bundleDir, bundleRef, false)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, meta.Package), 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, meta.Package, "catalog.yaml"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := (fbc.Catalog{Metadata: meta, Bundles: []fbc.Bundle{b}}).Write(f); err != nil {
		return err
	}
	return runOPM(ctx, opm, "validate", dir)
}

func runOPM(ctx context.Context, opm string, args ...string) error {
	if out, err := exec.CommandContext(ctx, opm, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("opm %v: %w: %s", args, err, out)
	}
	return nil
}

// CatalogTarball builds the catalog image of catalogDir, served by opm, into the
// tarball out under tag, and returns its digest.
func CatalogTarball(opm, catalogDir, tag, out string) (string, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return "", err
	}
	base, err := opmImage(opm)
	if err != nil {
		return "", err
	}
	img, err := images.Catalog(base, catalogDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return "", err
	}
	digest, err := img.Digest()
	return digest.String(), err
}

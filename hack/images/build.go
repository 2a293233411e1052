package main

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

// buildAll builds and pushes the operator image, the release bundle pinned to it by
// digest, its bundle image, the opm image and a catalog image of that bundle.
func buildAll(ctx context.Context, o options) error {
	tag := "v" + o.version
	tmp, err := os.MkdirTemp("", "images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	operatorRef, err := buildPush(ctx, o.registry+"/bitcoin-operator:"+tag, func() (v1.Image, error) {
		bin, err := BuildManager(ctx, tmp)
		if err != nil {
			return nil, err
		}
		return images.Operator(bin)
	})
	if err != nil {
		return err
	}
	bundleDir := filepath.Join(o.release, "bundle")
	if err := os.RemoveAll(bundleDir); err != nil {
		return err
	}
	if _, err := release.PinBundle(o.bundle, bundleDir, operatorRef, nil); err != nil {
		return err
	}
	bundleRef, err := buildPush(ctx, o.registry+"/bitcoin-operator-bundle:"+tag, func() (v1.Image, error) {
		return images.Bundle(bundleDir)
	})
	if err != nil {
		return err
	}
	opmImg, err := opmImage(o.opm)
	if err != nil {
		return err
	}
	if _, err := buildPush(ctx, o.registry+"/opm:"+tag, func() (v1.Image, error) { return opmImg, nil }); err != nil {
		return err
	}
	catalogDir := filepath.Join(tmp, "catalog")
	if err := WriteCatalog(ctx, o.opm, bundleDir, bundleRef, catalogDir); err != nil {
		return err
	}
	_, err = buildPush(ctx, o.registry+"/bitcoin-operator-catalog:"+tag, func() (v1.Image, error) {
		return CatalogImage(ctx, o.opm, opmImg, catalogDir, tmp)
	})
	return err
}

// buildPush builds an image, pushes it as tag, and returns its reference by digest.
func buildPush(ctx context.Context, tag string, build func() (v1.Image, error)) (string, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return "", err
	}
	img, err := build()
	if err != nil {
		return "", fmt.Errorf("building %s: %w", tag, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", tag, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	if err := report(tag, img); err != nil {
		return "", err
	}
	return ref.Context().Digest(digest.String()).String(), nil
}

func report(tag string, img v1.Image) error {
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", tag, digest)
	return nil
}

// BuildManager builds the operator binary as the Dockerfile's builder stage does, and
// without the build ID, which would differ between machines.
func BuildManager(ctx context.Context, dir string) ([]byte, error) {
	out := filepath.Join(dir, "manager")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "./cmd")
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

// CatalogImage builds the catalog image of catalogDir, with opm's serve cache built
// as catalog.Dockerfile's RUN step builds it.
func CatalogImage(ctx context.Context, opm string, base v1.Image, catalogDir, tmp string) (v1.Image, error) {
	cache, err := os.MkdirTemp(tmp, "cache-")
	if err != nil {
		return nil, err
	}
	if err := runOPM(ctx, opm, "serve", catalogDir, "--cache-dir="+cache, "--cache-only"); err != nil {
		return nil, err
	}
	return images.Catalog(base, catalogDir, cache)
}

func runOPM(ctx context.Context, opm string, args ...string) error {
	if out, err := exec.CommandContext(ctx, opm, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("opm %v: %w: %s", args, err, out)
	}
	return nil
}

// catalogTarball builds the catalog image of o.catalog into the tarball o.out.
func catalogTarball(ctx context.Context, o options) error {
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	base, err := opmImage(o.opm)
	if err != nil {
		return err
	}
	img, err := CatalogImage(ctx, o.opm, base, o.catalog, tmp)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(o.out, ref, img); err != nil {
		return err
	}
	return report(o.tag, img)
}

// Command images builds the project's images without a Docker daemon, reproducibly,
// and pushes them to a registry (`make images`), or builds only the catalog image of
// catalog/ into a tarball that `docker load` reads (`make catalog-build`).
//
//	images -registry HOST[/PATH] -version 0.1.0 -opm OPM -bundle bundle -release dist/release
//	images -catalog catalog -tag IMAGE -o dist/catalog-image.tar -opm OPM
//	images -push dist/catalog-image.tar -tag IMAGE
//
// Pushing trusts the system's CAs, or SSL_CERT_FILE's (hack/registry writes one).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bitcoinops/bitcoin-operator/internal/publish"
)

func main() {
	o := publish.Options{Root: "."}
	var catalog, push, tag, out string
	flag.StringVar(&o.Registry, "registry", "", "Build every image and push it under this registry (and path).")
	flag.StringVar(&o.Version, "version", "0.1.0", "The operator's version: the images' tag is v<version>.")
	flag.StringVar(&o.OPM, "opm", "opm", "operator-registry's opm binary, static, for linux: the opm and catalog images run it.")
	flag.StringVar(&o.Bundle, "bundle", "bundle", "The bundle directory.")
	flag.StringVar(&o.Release, "release", "dist/release", "Where the release copy of the bundle, pinned by digest, goes.")
	flag.StringVar(&catalog, "catalog", "", "Build only the catalog image of this file-based catalog directory.")
	flag.StringVar(&push, "push", "", "Push this image tarball to -tag.")
	flag.StringVar(&tag, "tag", "", "The catalog image's reference (-catalog, -push).")
	flag.StringVar(&out, "o", "", "The tarball the catalog image goes to (-catalog).")
	o.Pins = map[string]string{}
	flag.Func("pin", "IMAGE=IMAGE@sha256:...: name a related image (RELATED_IMAGE_*) by digest in the release bundle; repeatable.", func(s string) error {
		from, to, ok := strings.Cut(s, "=")
		if !ok || !strings.Contains(to, "@sha256:") {
			return fmt.Errorf("want IMAGE=IMAGE@sha256:DIGEST")
		}
		o.Pins[from] = to
		return nil
	})
	flag.Parse()
	ctx := context.Background()
	var err error
	switch {
	case catalog != "":
		var digest string
		if digest, err = publish.CatalogTarball(o.OPM, catalog, tag, out); err == nil {
			fmt.Printf("%s@%s in %s\n", tag, digest, out)
		}
	case push != "":
		err = pushTarball(ctx, push, tag)
	case o.Registry != "":
		var refs publish.Refs
		if refs, err = publish.All(ctx, o); err == nil {
			fmt.Printf("operator %s\nbundle   %s\nopm      %s\ncatalog  %s\nrelease bundle: %s/bundle\n",
				refs.Operator, refs.Bundle, refs.OPM, refs.Catalog, o.Release)
		}
	default:
		err = fmt.Errorf("say -registry, -catalog or -push")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func pushTarball(ctx context.Context, path, tag string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	img, err := tarball.ImageFromPath(path, &ref)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return err
	}
	digest, err := img.Digest()
	fmt.Printf("%s@%s\n", tag, digest)
	return err
}

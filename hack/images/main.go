// Command images builds the project's images without a Docker daemon, reproducibly,
// and pushes them to a registry (`make images`), or builds only the catalog image of
// catalog/ into a tarball that `docker load` reads (`make catalog-build`).
//
//	images -registry HOST[/PATH] -version 0.1.0 -opm OPM -bundle bundle -release dist/release
//	images -catalog catalog -tag IMAGE -o dist/catalog-image.tar -opm OPM
//	images -push dist/catalog-image.tar -tag IMAGE
//
// Pushing trusts the system's CAs, or SSL_CERT_FILE's (test/registry writes one).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	var o options
	flag.StringVar(&o.registry, "registry", "", "Build every image and push it under this registry (and path).")
	flag.StringVar(&o.version, "version", "0.1.0", "The operator's version: the images' tag is v<version>.")
	flag.StringVar(&o.opm, "opm", "opm", "operator-registry's opm binary, static, for linux: the opm and catalog images run it.")
	flag.StringVar(&o.bundle, "bundle", "bundle", "The bundle directory.")
	flag.StringVar(&o.release, "release", "dist/release", "Where the release copy of the bundle, pinned by digest, goes.")
	flag.StringVar(&o.catalog, "catalog", "", "Build only the catalog image of this file-based catalog directory.")
	flag.StringVar(&o.push, "push", "", "Push this image tarball to -tag.")
	flag.StringVar(&o.tag, "tag", "", "The catalog image's reference (-catalog, -push).")
	flag.StringVar(&o.out, "o", "", "The tarball the catalog image goes to (-catalog).")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

type options struct {
	registry, version, opm, bundle, release string
	catalog, push, tag, out                 string
}

func run(ctx context.Context, o options) error {
	switch {
	case o.catalog != "":
		return catalogTarball(ctx, o)
	case o.push != "":
		return pushTarball(ctx, o.push, o.tag)
	case o.registry != "":
		return buildAll(ctx, o)
	}
	return fmt.Errorf("say -registry, -catalog or -push")
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
	return report(tag, img)
}

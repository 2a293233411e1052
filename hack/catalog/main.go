// Command catalog writes the file-based catalog that users install the operator from:
// the package, its channels and the bundle of bundle/, which names the bundle image.
// `make catalog` runs it and validates the result with `opm validate`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitcoinops/bitcoin-operator/internal/fbc"
)

func main() {
	opm := flag.String("opm", "opm", "Path of operator-registry's opm.")
	bundleDir := flag.String("bundle", "bundle", "The bundle directory.")
	image := flag.String("image", "", "The bundle image the catalog points OLM at.")
	out := flag.String("o", "catalog/bitcoin-operator/catalog.yaml", "The catalog file to write.")
	flag.Parse()
	if err := run(*opm, *bundleDir, *image, *out); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run(opm, bundleDir, image, out string) error {
	if image == "" {
		return fmt.Errorf("-image is required")
	}
	meta, err := fbc.ReadMetadata(bundleDir)
	if err != nil {
		return err
	}
	bundle, err := fbc.Render(context.Background(), opm, bundleDir, image, false)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := (fbc.Catalog{Metadata: meta, Bundles: []fbc.Bundle{bundle}}).Write(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

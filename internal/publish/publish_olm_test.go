//go:build olm

// Tests that need the real opm (hack/olm-tools.sh builds it once, in minutes cold:
// too long for `go test ./...`), run by `make test-olm`.
package publish_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitcoinops/bitcoin-operator/internal/publish"
)

// TestCatalogImageIsReproducible builds the catalog image of bundle/ twice, from the
// catalog opm renders to the image's tarball, as make catalog and make catalog-build do: the
// same inputs must give the same digest.
func TestCatalogImageIsReproducible(t *testing.T) {
	ctx := context.Background()
	opm := opmBinary(t)
	const bundleRef = "127.0.0.1:5000/bitcoinops/bitcoin-operator-bundle@sha256:" +
		"0000000000000000000000000000000000000000000000000000000000000000"
	var digests []string
	for range 2 {
		tmp := t.TempDir()
		catalog := filepath.Join(tmp, "catalog")
		if err := publish.WriteCatalog(ctx, opm, "../../bundle", bundleRef, catalog); err != nil {
			t.Fatal(err)
		}
		d, err := publish.CatalogTarball(opm, catalog, "127.0.0.1:5000/bitcoinops/bitcoin-operator-catalog:v0.1.0",
			filepath.Join(tmp, "catalog-image.tar"))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two catalog images of the same catalog differ: %s, %s", digests[0], digests[1])
	}
}

// opmBinary is the opm that make images uses, built once by hack/olm-tools.sh.
func opmBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("../../hack/olm-tools.sh").Output()
	if err != nil {
		t.Fatalf("hack/olm-tools.sh: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "opm")
}

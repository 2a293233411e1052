// Package images assembles the project's images from their inputs: the operator image
// from the manager binary, the bundle image from a bundle directory, the opm image
// from an opm binary, and the catalog image from the opm image and a file-based
// catalog. Each is what its Dockerfile describes (the tests compare them), built with
// no daemon and reproducibly (package ociimage).
package images

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/bitcoinops/bitcoin-operator/internal/ociimage"
)

// NonRoot is the user the operator runs as: distroless's "nonroot".
const (
	NonRootUID = 65532
	NonRoot    = "65532:65532"
)

// IndexConfigsLabel tells OLM and operator-sdk where an index image keeps its catalog.
const IndexConfigsLabel = "operators.operatorframework.io.index.configs.v1"

// Operator is the operator image: the static manager binary as /manager, on a base of
// just what distroless/static:nonroot gives a Go program (a passwd and group naming
// the non-root user, its home, and a /tmp), run as that user.
func Operator(manager []byte) (v1.Image, error) {
	base, err := ociimage.Layer(nonRootBase())
	if err != nil {
		return nil, err
	}
	app, err := ociimage.Layer([]ociimage.File{{Path: "/manager", Mode: 0o755, Data: manager}})
	if err != nil {
		return nil, err
	}
	return ociimage.Build(nil, ociimage.Config{
		Entrypoint: []string{"/manager"}, User: NonRoot, WorkingDir: "/",
	}, base, app)
}

func nonRootBase() []ociimage.File {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
	return []ociimage.File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "/home/nonroot", Dir: true, Mode: 0o700, UID: NonRootUID, GID: NonRootUID},
		{Path: "/root", Dir: true, Mode: 0o700},
		{Path: "/tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
	}
}

// BundlePaths are the bundle directory's parts and where the bundle image keeps them,
// as bundle.Dockerfile copies them.
var BundlePaths = []struct{ Src, Dst string }{
	{"manifests", "/manifests"},
	{"metadata", "/metadata"},
	{"tests/scorecard", "/tests/scorecard"},
}

// Bundle is the bundle image of a bundle directory: its parts at the image's root,
// labelled with its metadata/annotations.yaml, as operator-sdk's bundle.Dockerfile is.
func Bundle(dir string) (v1.Image, error) {
	labels, err := annotations(dir)
	if err != nil {
		return nil, err
	}
	var files []ociimage.File
	for _, p := range BundlePaths {
		fs, err := ociimage.DirFiles(filepath.Join(dir, filepath.FromSlash(p.Src)), p.Dst)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	layer, err := ociimage.Layer(files)
	if err != nil {
		return nil, err
	}
	return ociimage.Build(nil, ociimage.Config{Labels: labels}, layer)
}

func annotations(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "metadata", "annotations.yaml"))
	if err != nil {
		return nil, err
	}
	var file struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("failed to read %s's annotations: %w", dir, err)
	}
	return file.Annotations, nil
}

// OPM is the stand-in for quay.io/operator-framework/opm: /bin/opm as the entrypoint
// and an empty catalog in /configs, labelled as an index image. operator-sdk's
// `run bundle --index-image` accepts it; Catalog builds on it.
func OPM(opm []byte) (v1.Image, error) {
	layer, err := ociimage.Layer([]ociimage.File{
		{Path: "/bin/opm", Mode: 0o755, Data: opm},
		{Path: "/configs", Dir: true, Mode: 0o755},
		{Path: "/tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
	})
	if err != nil {
		return nil, err
	}
	return ociimage.Build(nil, ociimage.Config{
		Entrypoint: []string{"/bin/opm"}, Cmd: []string{"serve", "/configs"},
		Labels: map[string]string{IndexConfigsLabel: "/configs"},
	}, layer)
}

// Catalog is the catalog image: the opm image with the file-based catalog in catalogDir
// at /configs, served by `opm serve /configs`, as catalog.Dockerfile describes it.
//
// It carries no pre-built serve cache, so that the same catalog gives the same digest:
// opm v1.61 keeps that cache in a pogreb database whose index files hold a random hash
// seed, so two caches of one catalog differ. Without one, opm builds the cache into a
// temporary directory when it starts (docs/olm.md says what that costs).
func Catalog(opm v1.Image, catalogDir string) (v1.Image, error) {
	configs, err := ociimage.DirFiles(catalogDir, "/configs")
	if err != nil {
		return nil, err
	}
	layer, err := ociimage.Layer(configs)
	if err != nil {
		return nil, err
	}
	return ociimage.Build(opm, ociimage.Config{
		Entrypoint: []string{"/bin/opm"}, Cmd: []string{"serve", "/configs"},
		Labels: map[string]string{IndexConfigsLabel: "/configs"},
	}, layer)
}

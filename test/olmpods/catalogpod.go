package olmpods

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"

	"github.com/bitcoinops/bitcoin-operator/internal/ociimage"
)

// OLM v0.38's pod for a CatalogSource with spec.image (reconciler.Pod): its label and
// container name. Its Service sends port 50051 to the container's 50051.
const (
	catalogSourceLabel = "olm.catalogSource"
	catalogContainer   = "registry-server"
)

func isCatalogPod(pod *corev1.Pod) bool {
	_, ok := pod.Labels[catalogSourceLabel]
	return ok && len(pod.Spec.Containers) == 1 && pod.Spec.Containers[0].Name == catalogContainer
}

// serveCatalogImage runs what the catalog pod's container would: the image's own
// entrypoint and command (or the container's, which override them), from the image's
// files extracted into a directory, with every absolute path in the arguments taken
// inside that directory and $TMPDIR its /tmp, on the pod's IP:50051.
func (p *Player) serveCatalogImage(ctx context.Context, pod *corev1.Pod) (*served, error) {
	dir, err := p.scratch("catalog-" + pod.Name)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	c := pod.Spec.Containers[0]
	ref, err := name.ParseReference(c.Image)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(ref, append(p.Remote, remote.WithContext(ctx))...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", c.Image, err)
	}
	if err := ociimage.Extract(img, root); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	argv := containerArgs(cf.Config.Entrypoint, cf.Config.Cmd, c.Command, c.Args)
	if len(argv) < 2 || argv[1] != "serve" {
		return nil, fmt.Errorf("%s runs %q, not opm serve", c.Image, argv)
	}
	for i, a := range argv {
		argv[i] = inside(root, a)
	}
	p.mu.Lock()
	if p.catalogs == nil {
		p.catalogs = map[string]string{}
	}
	p.catalogs[pod.Name] = root
	p.mu.Unlock()
	return p.start(argv[0], argv[1:], []string{"TMPDIR=" + filepath.Join(root, "tmp")}, dir,
		net.JoinHostPort(pod.Status.PodIP, registryPort))
}

// containerArgs is what a container runtime runs: the container's command, else the
// image's entrypoint; the container's args, else (without a command of its own) the
// image's cmd.
func containerArgs(entrypoint, cmd, command, args []string) []string {
	if len(command) > 0 {
		return append(append([]string{}, command...), args...)
	}
	if len(args) > 0 {
		return append(append([]string{}, entrypoint...), args...)
	}
	return append(append([]string{}, entrypoint...), cmd...)
}

// inside takes an absolute path, alone or as a --flag=/path value, into root.
func inside(root, arg string) string {
	if strings.HasPrefix(arg, "/") {
		return filepath.Join(root, arg)
	}
	if flag, value, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(flag, "-") && strings.HasPrefix(value, "/") {
		return flag + "=" + filepath.Join(root, value)
	}
	return arg
}

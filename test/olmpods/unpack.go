package olmpods

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/bitcoinops/bitcoin-operator/internal/ociimage"
)

// OLM's label on its bundle-unpack Jobs (bundle.BundleUnpackRefLabel), and the variable
// its extract container gets the bundle image from (configmap.EnvContainerImage).
const (
	unpackRefLabel = "operatorframework.io/bundle-unpack-ref"
	envImage       = "CONTAINER_IMAGE"
)

// unpack does what the Job's pod would: its init containers copy the bundle image's
// files to /bundle, then its extract container runs opm with the Job's own arguments.
func (p *Player) unpack(ctx context.Context, job *batchv1.Job) error {
	spec := job.Spec.Template.Spec
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "extract" {
		return fmt.Errorf("not an unpack Job as OLM v0.38 makes them: containers %v", spec.Containers)
	}
	extract := spec.Containers[0]
	var image string
	for _, e := range extract.Env {
		if e.Name == envImage {
			image = e.Value
		}
	}
	dir, err := p.scratch("unpack-" + job.Name)
	if err != nil {
		return err
	}
	if err := p.pullInto(ctx, image, filepath.Join(dir, "bundle")); err != nil {
		return err
	}
	// extract's command is opm alpha bundle extract -m /bundle/ -n NS -c CM -z.
	args := append([]string{}, extract.Command[1:]...)
	args = append(args, extract.Args...)
	for i, a := range args {
		if a == "/bundle/" {
			args[i] = filepath.Join(dir, "bundle") + "/"
		}
	}
	cmd := exec.CommandContext(ctx, p.OPM, append(args, "--kubeconfig", p.Kubeconfig)...)
	cmd.Env = append(os.Environ(), envImage+"="+image)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("opm %v: %w: %s", args, err, out)
	}
	fmt.Fprintf(p.Log, "olmpods: unpacked %s into ConfigMap %s/%s\n", image, job.Namespace, job.Name)
	return nil
}

// pullInto extracts the image's files under dir.
func (p *Player) pullInto(ctx context.Context, image, dir string) error {
	ref, err := name.ParseReference(image)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref, append(p.Remote, remote.WithContext(ctx))...)
	if err != nil {
		return fmt.Errorf("pulling %s: %w", image, err)
	}
	return ociimage.Extract(img, dir)
}

// Package olmpods plays, on a control plane whose pods run nothing (kwok), the pods
// of an OLM install that must run something, as test/fleet plays bitcoind:
//
//   - the registry pod that operator-sdk creates, whose container would `opm serve`
//     the catalog it wrote into ConfigMaps: the Player serves that catalog with the
//     real opm and forwards the pod's IP:50051 to it, once opm validate accepts it;
//   - the catalog pod that OLM creates for a CatalogSource with spec.image: the Player
//     pulls the image and runs its own entrypoint and command (its opm serving its
//     /configs) from the extracted files, on the pod's IP:50051;
//   - the bundle-unpack Job that OLM creates, whose pod would copy the bundle image's
//     files and run `opm alpha bundle extract` into OLM's ConfigMap: the Player pulls
//     the image from the registry, extracts it, and runs that same opm command.
//
// kwok then completes the Job's pod; OLM reads the ConfigMap. Pod IPs are loopback
// addresses (test/cluster), so nothing dials outside 127.0.0.0/8.
package olmpods

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Player plays the pods until its context ends.
type Player struct {
	Client     client.Client
	OPM        string // the opm binary
	Kubeconfig string // for opm alpha bundle extract
	Dir        string // scratch space
	Remote     []remote.Option
	Log        io.Writer

	// Only Run's goroutine uses these two.
	served   map[types.UID]*served
	unpacked map[types.UID]bool

	mu sync.Mutex
	// catalogs records the catalog each registry pod was given, by pod name, so that a
	// test can look at what operator-sdk wrote.
	catalogs map[string]string
	// errs records what went wrong, by object: a pod that cannot be played stays
	// unplayed, and the test can say why.
	errs map[string]error
}

// Run polls for pods and Jobs to play until ctx ends, then stops what it serves.
func (p *Player) Run(ctx context.Context) {
	p.served, p.unpacked = map[types.UID]*served{}, map[types.UID]bool{}
	defer p.stopAll()
	for {
		p.playRegistryPods(ctx)
		p.playUnpackJobs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Err returns what went wrong playing name, if anything.
func (p *Player) Err(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs[name]
}

// Catalog returns the catalog directory served for the registry pod name.
func (p *Player) Catalog(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.catalogs[name]
}

func (p *Player) fail(name string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.errs == nil {
		p.errs = map[string]error{}
	}
	if p.errs[name] == nil {
		fmt.Fprintf(p.Log, "olmpods: %s: %v\n", name, err)
	}
	p.errs[name] = err
}

func (p *Player) playUnpackJobs(ctx context.Context) {
	var jobs batchv1.JobList
	if err := p.Client.List(ctx, &jobs, client.HasLabels{unpackRefLabel}); err != nil {
		return
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if p.unpacked[job.UID] {
			continue
		}
		if err := p.unpack(ctx, job); err != nil {
			p.fail("job/"+job.Namespace+"/"+job.Name, err)
			continue
		}
		p.unpacked[job.UID] = true
	}
}

func (p *Player) scratch(name string) (string, error) {
	dir := filepath.Join(p.Dir, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}

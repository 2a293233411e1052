package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
)

// doubles run a Bitcoin Core RPC double on the IP of every pod of a size's networks,
// as test/e2e does, so that the operator wires peers and asks every node in rounds as
// it would in a cluster: what the bench measures includes that work and the status
// writes it brings.
type doubles struct {
	mu     sync.Mutex
	fleets []*fleet.Fleet[*bitcointest.Node]
}

// startDoubles starts a Fleet per network, each network's doubles in one simulated
// network of their own. The Fleets read the credentials as the operator writes them
// (fleet.NetworkSecret), with one client for all of them.
func startDoubles(ctx context.Context, cfg *rest.Config, c client.Reader, namespace string, networks int) (*doubles, error) {
	d := &doubles{}
	err := forEach(networks, func(i int) error {
		f, err := fleet.Start(ctx, fleet.Options[*bitcointest.Node]{
			Config: cfg, Namespace: namespace, Network: networkName(i),
			Start: fleet.Doubles(&bitcointest.Network{}), Credentials: awaitCredentials(fleet.NetworkSecret(c)),
		})
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.fleets = append(d.fleets, f)
		d.mu.Unlock()
		return nil
	})
	if err != nil {
		d.stop()
	}
	return d, err
}

// awaitCredentials waits for a pod's credentials instead of failing at once, and
// keeps each network's once read. kwok gives a pod its IP and marks it Ready in one
// step, so a double can only start once its pod is Ready, and the operator may dial it
// first: in a cluster the chart's readiness probe keeps a pod from Ready until
// bitcoind answers. A Fleet whose credentials fail tries again only a second later,
// and each read costs two requests under load; a kept answer starts the double at once.
func awaitCredentials(get fleet.CredentialsFunc) fleet.CredentialsFunc {
	var (
		mu   sync.Mutex
		kept fleet.Credentials
	)
	return func(ctx context.Context, pod *corev1.Pod) (fleet.Credentials, error) {
		mu.Lock()
		defer mu.Unlock()
		if kept != (fleet.Credentials{}) {
			return kept, nil
		}
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			creds, err := get(ctx, pod)
			kept = creds
			return err == nil, nil
		})
		if err != nil {
			return get(ctx, pod) // its error says what is missing
		}
		return kept, nil
	}
}

// calls returns the RPC calls every running double has served so far, and how many
// doubles run.
func (d *doubles) calls() (calls, nodes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.fleets {
		for _, n := range f.Nodes() {
			calls += n.AllCalls()
			nodes++
		}
	}
	return calls, nodes
}

func (d *doubles) stop() {
	d.mu.Lock()
	fleets := d.fleets
	d.fleets = nil
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range fleets {
		wg.Go(f.Stop)
	}
	wg.Wait()
}

// Each double holds a listener and the operator's keep-alive connection, in this
// process and in the operator's; the rest is the control plane's clients.
const (
	filesPerNode = 4
	filesBase    = 1024
)

// raiseFileLimit makes room for the doubles of nodes pods: Go raises the soft limit of
// open files to the hard one at start, and this says so clearly when that is not
// enough, instead of failing somewhere in the middle of a run with "too many open files".
func raiseFileLimit(nodes int) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	need := uint64(filesBase + filesPerNode*nodes)
	if lim.Cur < need && lim.Max >= need {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	if lim.Cur < need {
		return lim.Cur, fmt.Errorf("BENCH_SIZES asks for %d nodes at once, whose doubles need about %d open files; the limit is %d (hard %d): raise it with ulimit -n", nodes, need, lim.Cur, lim.Max)
	}
	return lim.Cur, nil
}

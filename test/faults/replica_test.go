//go:build faults

package faults

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// replica is one operator replica as a Deployment runs it: with --leader-elect, and
// restarted as a kubelet restarts a container that exits, after 10 s, then 20 s, and
// so on (CrashLoopBackOff).
type replica struct {
	name string
	// quit ends the supervision: the process is not restarted any more.
	quit chan struct{}
	done chan struct{}

	mu       sync.Mutex
	proc     *cluster.Process
	restarts int
}

// startReplica starts a replica that the test stops when it ends.
func startReplica(t *testing.T, name string) *replica {
	t.Helper()
	r := &replica{name: name, quit: make(chan struct{}), done: make(chan struct{})}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	go r.supervise()
	t.Cleanup(func() {
		if t.Failed() {
			fmt.Fprintf(os.Stderr, "\n--- %s's log (last 40 lines) ---\n%s\n", name, testkit.Tail(r.logPath(), 40))
		}
		r.stop()
	})
	return r
}

func (r *replica) start() error {
	// The replica's name plays the pod's, which the kubelet keeps across restarts.
	p, err := lc.StartOperator(r.name, binary, kubeconfig, "--leader-elect", "--leader-elect-identity="+r.name,
		"--leader-election-namespace="+cluster.OperatorNamespace, "--zap-log-level=debug")
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	return nil
}

func (r *replica) process() *cluster.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// supervise starts the process again whenever it exits, with the kubelet's back-off.
func (r *replica) supervise() {
	defer close(r.done)
	backoff := 10 * time.Second
	for {
		select {
		case <-r.quit:
			return
		case <-r.process().Done():
		}
		r.mu.Lock()
		r.restarts++
		r.mu.Unlock()
		select {
		case <-r.quit:
			return
		case <-time.After(backoff): // the kubelet's CrashLoopBackOff
		}
		backoff = min(2*backoff, 5*time.Minute)
		if r.start() != nil {
			return
		}
	}
}

// kill ends the replica with SIGKILL, as a crash or a lost Node would, for good.
func (r *replica) kill() {
	close(r.quit)
	<-r.done
	r.process().Kill()
}

// stop ends the replica with SIGTERM, as a rollout would; stopping twice is harmless.
func (r *replica) stop() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	<-r.done
	_ = r.process().Stop(15 * time.Second)
}

func (r *replica) logPath() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.LogPath
}

// leads tells whether the replica's log says it acquired the Lease.
func (r *replica) leads() bool {
	data, _ := os.ReadFile(r.logPath())
	return strings.Contains(strings.ToLower(string(data)), "successfully acquired lease")
}

// exits returns how many times the process exited by itself so far.
func (r *replica) exits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts
}

// Command bench measures what the operator costs a cluster and what its users wait for,
// on the local control plane of test/cluster with the operator binary as a separate
// process and a Bitcoin Core RPC double on the IP of every pod (test/fleet), so that
// peer wiring and the rounds that feed status run as in a cluster: how soon networks
// have their children, every node ready, are Connected and Synced, how late status
// follows pod readiness, how much the operator writes (by kind) until the networks
// settle and once they have, what it asks the nodes, the API server's own request
// count, the operator's memory and CPU, also with thousands of unrelated pods and
// beside hostile tenants. Run it with `make bench`; docs/benchmarks.md explains the
// figures, and the run's report goes to bench/results/<date>/.
//
// One operator process serves every size: each size's networks are created in a
// namespace of their own and settle in turn, then all of them idle together for one
// window, then each size is deleted in turn; writes are told apart by namespace. The
// first size runs again with a fresh operator, without and with unrelated pods, to
// compare peak memory.
//
//	BENCH_SIZES      networks x nodes, comma-separated (default 1x3,10x3,100x3,1x100)
//	BENCH_QUIET      how long the operator must not write for a size to be settled (default 10s)
//	BENCH_IDLE       the idle window after every size settled (default 120s)
//	BENCH_UNRELATED  unrelated pods for the memory comparison (default 5000; 0: none)
//	BENCH_HOSTILE    hostile tenants' networks of each kind beside a healthy one, with a
//	                 fresh operator: its peak memory (default 6; 0: none)
//	BENCH_CHECK      when set, fail unless every figure was measured and the operator
//	                 wrote nothing once settled
//	BENCH_DIR        keep the control plane's files (logs, audit log) in this directory
//	BENCH_POLICY     the networks' spec.podManagementPolicy (default: the API's, OrderedReady)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Settings of the control plane: the StatefulSet controller and the scheduler pace pod
// creation, so the bench raises their limits to measure the operator, not them.
var controllerManagerFlags = []string{
	"--kube-api-qps=500", "--kube-api-burst=1000", "--concurrent-statefulset-syncs=50",
}

// podReadyDelay is the readiness probe's part the bench plays: short, so that it
// measures the operator, and long enough for a double to start on the pod's IP.
const podReadyDelay = 300 * time.Millisecond

// The operator's own settings, its defaults unless a flag says otherwise.
var operatorFlags = []string{"--leader-elect", "--leader-election-namespace=" + cluster.OperatorNamespace}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	// Extra flags for every operator the bench runs, to measure another setting; the
	// report lists them.
	operatorFlags = append(operatorFlags, strings.Fields(os.Getenv("BENCH_OPERATOR_FLAGS"))...)
	sizes, err := parseSizes(env("BENCH_SIZES", "1x3,10x3,100x3,1x100"))
	if err != nil {
		return err
	}
	idle, err := time.ParseDuration(env("BENCH_IDLE", "120s"))
	if err != nil {
		return fmt.Errorf("BENCH_IDLE: %w", err)
	}
	quiet, err := time.ParseDuration(env("BENCH_QUIET", "10s"))
	if err != nil || quiet <= 0 {
		return fmt.Errorf("BENCH_QUIET: %q is not a positive duration", os.Getenv("BENCH_QUIET"))
	}
	unrelated, err := strconv.Atoi(env("BENCH_UNRELATED", "5000"))
	if err != nil {
		return fmt.Errorf("BENCH_UNRELATED: %w", err)
	}
	hostile, err := strconv.Atoi(env("BENCH_HOSTILE", "6"))
	if err != nil {
		return fmt.Errorf("BENCH_HOSTILE: %w", err)
	}

	// Every size is present at once during the idle window, each pod with its double.
	total := 0
	for _, s := range sizes {
		total += s.Networks * s.Nodes
	}
	files, err := raiseFileLimit(total)
	if err != nil {
		return err
	}
	began := time.Now()

	ctx := context.Background()
	lc, err := cluster.Start(ctx, cluster.Options{
		Dir:   os.Getenv("BENCH_DIR"),
		Nodes: 10, PodsPerNode: 500,
		// A pod runs with its IP this long before it turns Ready, so that its double
		// listens before the operator calls it, as bitcoind's RPC does when its
		// readiness probe passes. Without it, most nodes cost an RPCFailed event and
		// a retry that no real cluster shows.
		PodReadyDelay:          podReadyDelay,
		AuditUsers:             []string{cluster.OperatorUser},
		ControllerManagerFlags: controllerManagerFlags,
		Log:                    os.Stderr,
	})
	if err != nil {
		return err
	}
	defer lc.Stop()
	b, err := newBench(ctx, lc, quiet)
	if err != nil {
		return err
	}

	report := Report{
		Date:                   time.Now().UTC().Format(time.RFC3339),
		ControllerManagerFlags: controllerManagerFlags,
		OperatorFlags:          operatorFlags,
		IdleSeconds:            idle.Seconds(),
		QuietSeconds:           quiet.Seconds(),
		Machine:                machine(),
		Commit:                 commit(),
	}
	fmt.Printf("kube-controller-manager %s\noperator %s (other flags at their defaults)\nopen files limit %d for %d doubles\n\n",
		strings.Join(controllerManagerFlags, " "), strings.Join(operatorFlags, " "), files, total)
	printHeader()
	results, err := b.run(ctx, sizes, idle)
	if err != nil {
		return err
	}
	for _, r := range results {
		printRow(r)
	}
	report.Results = results
	if unrelated > 0 {
		fmt.Printf("\nThe first size again, each with a fresh operator: without, then with %d unrelated pods\n", unrelated)
		for _, n := range []int{0, unrelated} {
			if n > 0 {
				if err := b.createUnrelatedPods(ctx, n); err != nil {
					return err
				}
			}
			r, err := b.single(ctx, sizes[0], n)
			if err != nil {
				return fmt.Errorf("size %s with %d unrelated pods: %w", sizes[0], n, err)
			}
			printRow(r)
			report.Memory = append(report.Memory, r)
		}
	}
	if hostile > 0 {
		fmt.Printf("\nHostile tenants, with a fresh operator: %d networks of %d nodes each answering %d MiB per call, answering in %s, resetting connections\n",
			hostile, hostileNodes, hugeAnswer>>20, slowAnswer)
		h, err := b.hostile(ctx, hostile)
		if err != nil {
			return fmt.Errorf("hostile tenants: %w", err)
		}
		fmt.Printf("a healthy network beside them Connected after %.2f s; the operator's peak RSS %.1f MiB\n",
			h.HealthyConnectedSeconds, h.PeakRSSMiB)
		report.Hostile = &h
	}
	report.RunSeconds = time.Since(began).Seconds()
	path, err := report.write()
	if err != nil {
		return err
	}
	fmt.Printf("\nReport, plots and figures written to %s (%.0f s in all)\n", path, report.RunSeconds)
	if os.Getenv("BENCH_CHECK") != "" {
		return report.check()
	}
	return nil
}

// Size is a number of networks of a number of nodes each.
type Size struct{ Networks, Nodes int }

func (s Size) String() string { return fmt.Sprintf("%dx%d", s.Networks, s.Nodes) }

func parseSizes(list string) ([]Size, error) {
	var sizes []Size
	for _, item := range strings.Split(list, ",") {
		var s Size
		if _, err := fmt.Sscanf(strings.TrimSpace(item), "%dx%d", &s.Networks, &s.Nodes); err != nil || s.Networks < 1 || s.Nodes < 1 {
			return nil, fmt.Errorf("BENCH_SIZES: %q is not <networks>x<nodes>", item)
		}
		sizes = append(sizes, s)
	}
	return sizes, nil
}

// Report is what a run writes to bench/results/<date>/results.json.
type Report struct {
	Date                   string   `json:"date"`
	Commit                 string   `json:"commit"`
	Machine                string   `json:"machine"`
	ControllerManagerFlags []string `json:"controllerManagerFlags"`
	OperatorFlags          []string `json:"operatorFlags"`
	IdleSeconds            float64  `json:"idleSeconds"`
	QuietSeconds           float64  `json:"quietSeconds"`
	RunSeconds             float64  `json:"runSeconds"`
	Results                []Result `json:"results"`
	// Memory holds the first size again, each with a fresh operator, without and with
	// unrelated pods in the cluster.
	Memory []Result `json:"memory,omitempty"`
	// Hostile holds the run beside hostile tenants.
	Hostile *HostileResult `json:"hostile,omitempty"`
}

// check fails unless every figure was measured and the operator wrote nothing once
// the networks had settled: that one is a correctness property, not a speed.
func (r Report) check() error {
	var errs []error
	if len(r.Memory) != 2 {
		errs = append(errs, errors.New("the memory comparison with unrelated pods is missing"))
	}
	if h := r.Hostile; h == nil || h.HealthyConnectedSeconds <= 0 || h.PeakRSSMiB <= 0 {
		errs = append(errs, errors.New("the hostile tenants' figures are missing"))
	}
	for _, res := range r.Results {
		if res.IdleWrites != 0 {
			errs = append(errs, fmt.Errorf("%s: %d writes once settled: %v", res.Size, res.IdleWrites, res.IdleWriteSamples))
		}
		if res.IdleSeconds <= 0 || res.RPCCallsPerNodeMinute <= 0 {
			errs = append(errs, fmt.Errorf("%s: the settled figures are missing (idle %.0f s, RPC calls per node per minute %.2f)",
				res.Size, res.IdleSeconds, res.RPCCallsPerNodeMinute))
		}
		if l := res.Load; l.APIServerRequests <= 0 || l.APIServerWrites <= 0 || l.OperatorRequests <= 0 || l.OperatorWrites <= 0 {
			errs = append(errs, fmt.Errorf("%s: a request count is missing: %+v", res.Size, l))
		}
	}
	for _, res := range append(r.Results, r.Memory...) {
		if res.StatusLag.Count != res.Size.Networks*res.Size.Nodes || res.AfterLastReady.Count != res.Size.Networks || res.ChildrenSeconds <= 0 || res.ReadySeconds <= 0 ||
			res.ConnectedSeconds <= 0 || res.SyncedSeconds <= 0 || res.SettledSeconds <= 0 ||
			res.DeleteSeconds <= 0 || res.PeakRSSMiB <= 0 || res.CPUSeconds <= 0 {
			errs = append(errs, fmt.Errorf("%s: a figure is missing: %+v", res.Size, res))
		}
		if w := res.Writes; w.Total <= 0 || len(w.ByKind) == 0 || w.Events <= 0 || w.EventsPerNetworkMax <= 0 {
			errs = append(errs, fmt.Errorf("%s: the writes until settled are missing: %+v", res.Size, w))
		}
	}
	return errors.Join(errs...)
}

// commit names the commit the bench runs, "+dirty" when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty=+dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name\t: "); ok {
				cpu = name
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores visible to Go", cpu, numCPU())
}

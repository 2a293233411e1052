// Command bench measures what the operator costs a cluster, on the local control plane
// of test/cluster with the operator binary as a separate process: how fast networks
// are created and converge, how late status follows pod readiness, how much the
// operator writes once idle and while networks are deleted, and how much memory and CPU
// it uses, also with thousands of unrelated pods in the cluster. Run it with
// `make bench`; bench/README.md explains the figures.
//
// One operator process serves every size: each size's networks are created in a
// namespace of their own and converge in turn, then all of them idle together for one
// window, then each size is deleted in turn; writes are told apart by namespace. The
// first size runs again with a fresh operator, without and with unrelated pods, to
// compare peak memory.
//
//	BENCH_SIZES      networks x nodes, comma-separated (default 1x3,10x3,100x3,1x100)
//	BENCH_IDLE       the idle window after convergence (default 120s)
//	BENCH_UNRELATED  unrelated pods for the memory comparison (default 5000; 0: none)
//	BENCH_HOSTILE    hostile tenants' networks of each kind beside a healthy one, with a
//	                 fresh operator: its peak memory (default 6; 0: none)
//	BENCH_CHECK      when set, fail unless every figure was measured and idle writes are 0
//	BENCH_DIR        keep the control plane's files (logs, audit log) in this directory
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	sizes, err := parseSizes(env("BENCH_SIZES", "1x3,10x3,100x3,1x100"))
	if err != nil {
		return err
	}
	idle, err := time.ParseDuration(env("BENCH_IDLE", "120s"))
	if err != nil {
		return fmt.Errorf("BENCH_IDLE: %w", err)
	}
	unrelated, err := strconv.Atoi(env("BENCH_UNRELATED", "5000"))
	if err != nil {
		return fmt.Errorf("BENCH_UNRELATED: %w", err)
	}
	hostile, err := strconv.Atoi(env("BENCH_HOSTILE", "6"))
	if err != nil {
		return fmt.Errorf("BENCH_HOSTILE: %w", err)
	}

	ctx := context.Background()
	lc, err := cluster.Start(ctx, cluster.Options{
		Dir:   os.Getenv("BENCH_DIR"),
		Nodes: 10, PodsPerNode: 500,
		AuditUsers:             []string{cluster.OperatorUser},
		ControllerManagerFlags: controllerManagerFlags,
		Log:                    os.Stderr,
	})
	if err != nil {
		return err
	}
	defer lc.Stop()
	b, err := newBench(ctx, lc)
	if err != nil {
		return err
	}

	report := Report{
		Date:                   time.Now().UTC().Format(time.RFC3339),
		ControllerManagerFlags: controllerManagerFlags,
		OperatorFlags:          operatorFlags,
		IdleSeconds:            idle.Seconds(),
		Machine:                machine(),
	}
	fmt.Printf("kube-controller-manager %s\noperator %s (other flags at their defaults)\n\n",
		strings.Join(controllerManagerFlags, " "), strings.Join(operatorFlags, " "))
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
	path, err := report.write()
	if err != nil {
		return err
	}
	fmt.Printf("\nFigures written to %s\n", path)
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

// Report is what a run writes to bench/results/<date>.json.
type Report struct {
	Date                   string   `json:"date"`
	Machine                string   `json:"machine"`
	ControllerManagerFlags []string `json:"controllerManagerFlags"`
	OperatorFlags          []string `json:"operatorFlags"`
	IdleSeconds            float64  `json:"idleSeconds"`
	Results                []Result `json:"results"`
	// Memory holds the first size again, each with a fresh operator, without and with
	// unrelated pods in the cluster.
	Memory []Result `json:"memory,omitempty"`
	// Hostile holds the run beside hostile tenants.
	Hostile *HostileResult `json:"hostile,omitempty"`
}

func (r Report) write() (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bench", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, strings.ReplaceAll(r.Date, ":", "-")+".json")
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(data, '\n'), 0o644)
}

// check fails unless every figure was measured and the operator wrote nothing while
// idle: that one is a correctness property, not a speed.
func (r Report) check() error {
	var errs []error
	if len(r.Memory) != 2 {
		errs = append(errs, errors.New("the memory comparison with unrelated pods is missing"))
	}
	if h := r.Hostile; h == nil || h.HealthyConnectedSeconds <= 0 || h.PeakRSSMiB <= 0 {
		errs = append(errs, errors.New("the hostile tenants' figures are missing"))
	}
	for _, res := range append(r.Results, r.Memory...) {
		if res.IdleSeconds > 0 && res.IdleWrites != 0 {
			errs = append(errs, fmt.Errorf("%s: %d writes while idle: %v", res.Size, res.IdleWrites, res.IdleWriteSamples))
		}
		if res.StatusLag.Count != res.Size.Networks*res.Size.Nodes || res.CreateSeconds <= 0 || res.ConvergedSeconds <= 0 ||
			res.DeleteSeconds <= 0 || res.PeakRSSMiB <= 0 || res.CPUSeconds <= 0 {
			errs = append(errs, fmt.Errorf("%s: a figure is missing: %+v", res.Size, res))
		}
	}
	return errors.Join(errs...)
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

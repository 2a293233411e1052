package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// Result holds the figures of one size.
type Result struct {
	Size             Size       `json:"size"`
	UnrelatedPods    int        `json:"unrelatedPods"`
	CreateSeconds    float64    `json:"createSeconds"`
	StatusLag        LagFigures `json:"statusLag"`
	ConvergedSeconds float64    `json:"convergedSeconds"`
	IdleSeconds      float64    `json:"idleSeconds"`
	IdleWrites       int        `json:"idleWrites"`
	IdleLeaseWrites  int        `json:"idleLeaseWrites"`
	IdleWriteSamples []string   `json:"idleWriteSamples,omitempty"`
	DeleteSeconds    float64    `json:"deleteSeconds"`
	DeleteWrites     int        `json:"deleteWrites"`
	PeakRSSMiB       float64    `json:"peakRSSMiB"`
	CPUSeconds       float64    `json:"cpuSeconds"`
}

// LagFigures summarise, over every pod, the time from the bench seeing the pod Ready
// to it seeing the pod's status.nodes entry ready.
type LagFigures struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Seconds"`
	P99   float64 `json:"p99Seconds"`
	Max   float64 `json:"maxSeconds"`
}

type bench struct {
	lc                 *cluster.Cluster
	cfg                *rest.Config
	k8s                client.Client
	binary, kubeconfig string
}

func newBench(ctx context.Context, lc *cluster.Cluster) (*bench, error) {
	kubeconfig, err := lc.InstallOperator(ctx)
	if err != nil {
		return nil, err
	}
	binary, err := lc.BuildOperator(ctx)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(lc.Config)
	cfg.QPS, cfg.Burst = 1000, 2000 // the bench's own requests must not be what it measures
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		return nil, err
	}
	return &bench{lc: lc, cfg: cfg, k8s: c, binary: binary, kubeconfig: kubeconfig}, nil
}

// sizeRun is one size's networks, in a namespace of their own.
type sizeRun struct {
	Result
	namespace string
}

// run measures every size with one operator process: each size is created and
// converges in turn, then all of them idle together for one window (so that every size
// is at rest while every other is present), then each is deleted in turn. Writes are
// told apart by namespace.
func (b *bench) run(ctx context.Context, sizes []Size, idle time.Duration) ([]Result, error) {
	op, err := b.startOperator(ctx, "operator")
	if err != nil {
		return nil, err
	}
	defer op.Stop(10 * time.Second)
	runs := make([]*sizeRun, len(sizes))
	for i, s := range sizes {
		if runs[i], err = b.converge(ctx, op, s); err != nil {
			return nil, fmt.Errorf("size %s: %w", s, err)
		}
	}

	// Idle: nothing changes; whatever the operator writes now is waste.
	idleStart := time.Now()
	time.Sleep(idle)
	writes, err := operatorWrites(b.lc, idleStart, time.Now())
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(runs))
	for i, r := range runs {
		w := writes.in(r.namespace)
		r.IdleSeconds, r.IdleWrites, r.IdleWriteSamples = idle.Seconds(), w.count, w.samples
		r.IdleLeaseWrites = writes.in(cluster.OperatorNamespace).count
		if err := b.deleteAll(ctx, r); err != nil {
			return nil, fmt.Errorf("size %s: %w", r.Size, err)
		}
		results[i] = r.Result
	}
	return results, nil
}

// single measures one size with a fresh operator process, for its memory and CPU.
func (b *bench) single(ctx context.Context, s Size, unrelated int) (Result, error) {
	op, err := b.startOperator(ctx, fmt.Sprintf("operator-%s-%d", s, unrelated))
	if err != nil {
		return Result{}, err
	}
	defer op.Stop(10 * time.Second)
	r, err := b.converge(ctx, op, s)
	if err != nil {
		return Result{}, err
	}
	r.UnrelatedPods = unrelated
	return r.Result, b.deleteAll(ctx, r)
}

func (b *bench) startOperator(ctx context.Context, name string) (*cluster.Process, error) {
	op, err := b.lc.StartOperator(name, b.binary, b.kubeconfig, operatorFlags...)
	if err != nil {
		return nil, err
	}
	if err := b.waitForLeader(ctx); err != nil {
		op.Kill()
		return nil, err
	}
	return op, nil
}

// converge creates a size's networks and times them until they are Available. CPU is
// the operator's while they converged; peak RSS is the operator's so far.
func (b *bench) converge(ctx context.Context, op *cluster.Process, s Size) (*sizeRun, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-" + s.String() + "-"}}
	if err := b.k8s.Create(ctx, ns); err != nil {
		return nil, err
	}
	r := &sizeRun{Result: Result{Size: s}, namespace: ns.Name}
	obs, err := observe(ctx, b.cfg, ns.Name, s)
	if err != nil {
		return nil, err
	}
	defer obs.stop()
	_, cpuBefore, err := processStats(op.Pid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := forEach(s.Networks, func(i int) error {
		return b.k8s.Create(ctx, &bitcoinv1alpha1.BitcoinNetwork{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("net-%d", i), Namespace: ns.Name},
			Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: int32(s.Nodes)},
		})
	}); err != nil {
		return nil, err
	}
	created, err := obs.wait(obs.created, timeoutFor(s), "every StatefulSet and Service")
	if err != nil {
		return nil, err
	}
	converged, err := obs.wait(obs.converged, timeoutFor(s), "every network Available")
	if err != nil {
		return nil, err
	}
	r.CreateSeconds, r.ConvergedSeconds = created.Sub(start).Seconds(), converged.Sub(start).Seconds()
	r.StatusLag = obs.lag()
	rss, cpu, err := processStats(op.Pid())
	r.PeakRSSMiB, r.CPUSeconds = rss, cpu-cpuBefore
	return r, err
}

// deleteAll deletes a size's networks and times the garbage collector's work, counting
// the operator's writes meanwhile.
func (b *bench) deleteAll(ctx context.Context, r *sizeRun) error {
	start := time.Now()
	if err := forEach(r.Size.Networks, func(i int) error {
		return b.k8s.Delete(ctx, &bitcoinv1alpha1.BitcoinNetwork{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("net-%d", i), Namespace: r.namespace},
		})
	}); err != nil {
		return err
	}
	deleted, err := b.waitEmpty(ctx, r.namespace, timeoutFor(r.Size))
	if err != nil {
		return err
	}
	r.DeleteSeconds = deleted.Sub(start).Seconds()
	writes, err := operatorWrites(b.lc, start, deleted)
	r.DeleteWrites = writes.in(r.namespace).count
	_ = b.k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.namespace}})
	return err
}

func timeoutFor(s Size) time.Duration {
	return 2*time.Minute + time.Duration(s.Networks*s.Nodes)*300*time.Millisecond
}

// waitForLeader waits until an operator holds the leader election Lease.
func (b *bench) waitForLeader(ctx context.Context) error {
	return cluster.Poll(ctx, time.Minute, "an operator to become leader", func() (bool, error) {
		lease := &coordinationv1.Lease{}
		err := b.k8s.Get(ctx, client.ObjectKey{Namespace: cluster.OperatorNamespace, Name: "bitcoin-operator.bitcoinops.io"}, lease)
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", nil
	})
}

// waitEmpty waits until no pod, StatefulSet or Service is left in the namespace.
func (b *bench) waitEmpty(ctx context.Context, namespace string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		left := 0
		for _, list := range []client.ObjectList{&corev1.PodList{}, &corev1.ServiceList{}, &appsv1.StatefulSetList{}} {
			if err := b.k8s.List(ctx, list, client.InNamespace(namespace)); err != nil {
				return time.Time{}, err
			}
			left += meta.LenList(list)
		}
		if left == 0 {
			return time.Now(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("objects left in %s after %s", namespace, timeout)
}

// createUnrelatedPods creates pods that are not the operator's, pinned by a node
// selector that matches no Node, so they stay Pending and cost the scheduler and kwok
// nothing but a look.
func (b *bench) createUnrelatedPods(ctx context.Context, count int) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-unrelated"}}
	if err := b.k8s.Create(ctx, ns); err != nil {
		return err
	}
	start := time.Now()
	err := forEach(count, func(i int) error {
		return b.k8s.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%d", i), Namespace: ns.Name,
				Labels: map[string]string{"app": "unrelated"}},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"bench.bitcoinops.io/no-such-node": "true"},
				Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none:0",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m")}}}},
			},
		})
	})
	fmt.Fprintf(os.Stderr, "Created %d unrelated pods in %.1f s\n", count, time.Since(start).Seconds())
	return err
}

// forEach runs f for 0..n-1 on a few goroutines and returns the first error.
func forEach(n int, f func(int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// processStats reads a process's peak resident memory and CPU time from /proc.
func processStats(pid int) (rssMiB, cpuSeconds float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			rssMiB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which ends with ')': utime and stime are the
	// 14th and 15th fields of the line, in clock ticks of 1/100 s.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return rssMiB, (utime + stime) / 100, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func lagFigures(lags []float64) LagFigures {
	sort.Float64s(lags)
	if len(lags) == 0 {
		return LagFigures{}
	}
	return LagFigures{Count: len(lags), P50: percentile(lags, 0.50), P99: percentile(lags, 0.99), Max: lags[len(lags)-1]}
}

func numCPU() int { return runtime.NumCPU() }

func printHeader() {
	fmt.Printf("%-9s %8s %9s %9s %9s %10s %12s %8s %9s %9s %8s\n",
		"size", "create", "lag p50", "lag p99", "lag max", "converged", "idle writes", "delete", "del writes", "peak RSS", "CPU")
}

func printRow(r Result) {
	name := r.Size.String()
	if r.UnrelatedPods > 0 {
		name += fmt.Sprintf("+%dp", r.UnrelatedPods)
	}
	idle := "          -"
	if r.IdleSeconds > 0 {
		idle = fmt.Sprintf("%5d (+%d L)", r.IdleWrites, r.IdleLeaseWrites)
	}
	fmt.Printf("%-9s %7.2fs %8.3fs %8.3fs %8.3fs %9.2fs %12s %7.2fs %9d %7.1fMi %7.2fs\n",
		name, r.CreateSeconds, r.StatusLag.P50, r.StatusLag.P99, r.StatusLag.Max, r.ConvergedSeconds,
		idle, r.DeleteSeconds, r.DeleteWrites, r.PeakRSSMiB, r.CPUSeconds)
}

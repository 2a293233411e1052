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

// measure runs one size with a fresh operator process, in a namespace of its own, and
// counts its writes for idle once the networks have converged.
func (b *bench) measure(ctx context.Context, s Size, unrelated int, idle time.Duration) (Result, error) {
	r := Result{Size: s, UnrelatedPods: unrelated, IdleSeconds: idle.Seconds()}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-" + s.String() + "-"}}
	if err := b.k8s.Create(ctx, ns); err != nil {
		return r, err
	}
	op, err := b.lc.StartOperator("operator-"+ns.Name, b.binary, b.kubeconfig, operatorFlags...)
	if err != nil {
		return r, err
	}
	defer op.Stop(10 * time.Second)
	if err := b.waitForLeader(ctx); err != nil {
		return r, err
	}

	obs, err := observe(ctx, b.cfg, ns.Name, s)
	if err != nil {
		return r, err
	}
	defer obs.stop()
	start := time.Now()
	if err := forEach(s.Networks, func(i int) error {
		return b.k8s.Create(ctx, &bitcoinv1alpha1.BitcoinNetwork{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("net-%d", i), Namespace: ns.Name},
			Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: int32(s.Nodes)},
		})
	}); err != nil {
		return r, err
	}
	convergeTimeout := 2*time.Minute + time.Duration(s.Networks*s.Nodes)*100*time.Millisecond
	created, err := obs.wait(obs.created, convergeTimeout, "every StatefulSet and Service")
	if err != nil {
		return r, err
	}
	converged, err := obs.wait(obs.converged, convergeTimeout, "every network Available")
	if err != nil {
		return r, err
	}
	r.CreateSeconds, r.ConvergedSeconds = created.Sub(start).Seconds(), converged.Sub(start).Seconds()
	r.StatusLag = obs.lag()

	// Idle: nothing changes; whatever the operator writes now is waste.
	idleStart := time.Now()
	time.Sleep(idle)
	writes, err := operatorWrites(b.lc.AuditLog, idleStart, time.Now())
	if err != nil {
		return r, err
	}
	r.IdleWrites, r.IdleLeaseWrites, r.IdleWriteSamples = writes.others, writes.leases, writes.samples

	deleteStart := time.Now()
	if err := forEach(s.Networks, func(i int) error {
		return b.k8s.Delete(ctx, &bitcoinv1alpha1.BitcoinNetwork{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("net-%d", i), Namespace: ns.Name},
		})
	}); err != nil {
		return r, err
	}
	deleted, err := b.waitEmpty(ctx, ns.Name, convergeTimeout)
	if err != nil {
		return r, err
	}
	r.DeleteSeconds = deleted.Sub(deleteStart).Seconds()
	if writes, err = operatorWrites(b.lc.AuditLog, deleteStart, deleted); err != nil {
		return r, err
	}
	r.DeleteWrites = writes.others
	r.PeakRSSMiB, r.CPUSeconds, err = processStats(op.Pid())
	_ = b.k8s.Delete(ctx, ns)
	return r, err
}

// waitForLeader waits until an operator holds the leader election Lease.
func (b *bench) waitForLeader(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		lease := &coordinationv1.Lease{}
		err := b.k8s.Get(ctx, client.ObjectKey{Namespace: cluster.OperatorNamespace, Name: "bitcoin-operator.bitcoinops.io"}, lease)
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no operator became leader within a minute")
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
					first = cmpErr(first, err)
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

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
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

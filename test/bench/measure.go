package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// Result holds the figures of one size. Times are seconds from applying the size's
// networks; "settled" is defined at settle.
type Result struct {
	Size          Size `json:"size"`
	UnrelatedPods int  `json:"unrelatedPods"`
	// ChildrenSeconds: every StatefulSet, Service, NetworkPolicy and credentials Secret
	// exists.
	ChildrenSeconds float64 `json:"childrenSeconds"`
	// ReadySeconds: every network is Available with every status.nodes entry ready.
	ReadySeconds float64 `json:"readySeconds"`
	// ConnectedSeconds and SyncedSeconds: every network is Connected, and Synced, with
	// every node ready (the conditions speak of the ready nodes only).
	ConnectedSeconds float64 `json:"connectedSeconds"`
	SyncedSeconds    float64 `json:"syncedSeconds"`
	// SettledSeconds: when the last network write before the quiet window was received.
	SettledSeconds float64    `json:"settledSeconds"`
	StatusLag      LagFigures `json:"statusLag"`
	// AfterLastReady is, over the networks, from the last of a network's pods turning
	// Ready to the network being Ready, Connected and Synced.
	AfterLastReady LagFigures `json:"connectedSyncedAfterLastPodReady"`
	// Writes are the operator's writes until settled, by kind.
	Writes WriteFigures `json:"writesUntilSettled"`
	// Load is the API server's request count from applying the networks until the
	// bench saw them settled, quiet window included.
	Load             LoadFigures `json:"load"`
	IdleSeconds      float64     `json:"idleSeconds"`
	IdleWrites       int         `json:"idleWrites"`
	IdleLeaseWrites  int         `json:"idleLeaseWrites"`
	IdleWriteSamples []string    `json:"idleWriteSamples,omitempty"`
	// RPCCallsPerNodeMinute is what the doubles served during the idle window, per
	// node and minute.
	RPCCallsPerNodeMinute float64 `json:"rpcCallsPerNodeMinute"`
	DeleteSeconds         float64 `json:"deleteSeconds"`
	DeleteWrites          int     `json:"deleteWrites"`
	PeakRSSMiB            float64 `json:"peakRSSMiB"`
	// CPUSeconds is the operator's CPU time from applying the networks until the bench
	// saw them settled, quiet window included.
	CPUSeconds float64 `json:"cpuSeconds"`
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
	cs                 kubernetes.Interface
	audit              *auditLog
	binary, kubeconfig string
	// quiet is how long the operator must write nothing in a size's namespace, once
	// every network is Ready, Connected and Synced, for the size to count as settled.
	quiet time.Duration
}

func newBench(ctx context.Context, lc *cluster.Cluster, quiet time.Duration) (*bench, error) {
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
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &bench{lc: lc, cfg: cfg, k8s: c, cs: cs, audit: newAuditLog(lc.AuditLog), binary: binary, kubeconfig: kubeconfig, quiet: quiet}, nil
}

// operator is a running operator process and its metrics endpoint.
type operator struct {
	*cluster.Process
	metrics string
}

// sizeRun is one size's networks, in a namespace of their own, with their doubles.
type sizeRun struct {
	Result
	namespace string
	doubles   *doubles
}

// run measures every size with one operator process: each size is created and
// settles in turn, then all of them idle together for one window (so that every size
// is at rest while every other is present), then each is deleted in turn. Writes are
// told apart by namespace.
func (b *bench) run(ctx context.Context, sizes []Size, idle time.Duration) ([]Result, error) {
	op, err := b.startOperator(ctx, "operator")
	if err != nil {
		return nil, err
	}
	defer op.Stop(10 * time.Second)
	runs := make([]*sizeRun, 0, len(sizes))
	defer func() {
		for _, r := range runs {
			r.doubles.stop()
		}
	}()
	for _, s := range sizes {
		r, err := b.converge(ctx, op, s)
		if err != nil {
			return nil, fmt.Errorf("size %s: %w", s, err)
		}
		runs = append(runs, r)
	}

	// Idle: nothing changes; whatever the operator writes now is waste, and what it
	// asks the nodes is the cost of keeping watch.
	idleStart := time.Now()
	callsBefore := make([]int, len(runs))
	for i, r := range runs {
		callsBefore[i], _ = r.doubles.calls()
	}
	time.Sleep(idle)
	idleEnd := time.Now()
	writes, err := b.audit.writes(idleStart, idleEnd)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(runs))
	for i, r := range runs {
		calls, nodes := r.doubles.calls()
		if nodes > 0 {
			r.RPCCallsPerNodeMinute = float64(calls-callsBefore[i]) / float64(nodes) / idleEnd.Sub(idleStart).Minutes()
		}
		w := writes.in(r.namespace)
		r.IdleSeconds, r.IdleWrites, r.IdleWriteSamples = idle.Seconds(), len(w), w.samples()
		r.IdleLeaseWrites = len(writes.in(cluster.OperatorNamespace))
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
	defer r.doubles.stop()
	r.UnrelatedPods = unrelated
	return r.Result, b.deleteAll(ctx, r)
}

// startOperator runs the operator with its metrics on plain HTTP on loopback, for the
// bench to read its request counter.
func (b *bench) startOperator(ctx context.Context, name string) (*operator, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", cluster.FreePort())
	args := append(slices.Clone(operatorFlags), "--metrics-bind-address="+addr, "--metrics-secure=false")
	if pprof := os.Getenv("BENCH_PPROF"); pprof != "" && name == "operator" {
		args = append(args, "--pprof-bind-address="+pprof) // the sizes' operator, to profile it while it works
	}
	p, err := b.lc.StartOperator(name, b.binary, b.kubeconfig, args...)
	if err != nil {
		return nil, err
	}
	if err := b.waitForLeader(ctx); err != nil {
		p.Kill()
		return nil, err
	}
	return &operator{Process: p, metrics: "http://" + addr + "/metrics"}, nil
}

func networkName(i int) string { return fmt.Sprintf("net-%d", i) }

// converge creates a size's networks with a double behind every pod and times them
// until they settle. CPU is the operator's meanwhile; peak RSS is the operator's so far.
func (b *bench) converge(ctx context.Context, op *operator, s Size) (*sizeRun, error) {
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
	if r.doubles, err = startDoubles(ctx, b.cfg, b.k8s, ns.Name, s.Networks); err != nil {
		return nil, err
	}
	_, cpuBefore, err := processStats(op.Pid())
	if err != nil {
		return r, err
	}
	countsBefore, err := readCounts(ctx, b.cs, op.metrics)
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := forEach(s.Networks, func(i int) error {
		return b.k8s.Create(ctx, &bitcoinv1alpha1.BitcoinNetwork{
			ObjectMeta: metav1.ObjectMeta{Name: networkName(i), Namespace: ns.Name},
			Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: int32(s.Nodes),
				PodManagementPolicy: appsv1.PodManagementPolicyType(os.Getenv("BENCH_POLICY"))},
		})
	}); err != nil {
		return r, err
	}
	timeout := timeoutFor(s)
	for _, m := range []struct {
		at   *float64
		m    *milestone
		what string
	}{
		{&r.ChildrenSeconds, obs.childrenDone, "every StatefulSet, Service, NetworkPolicy and Secret"},
		{&r.ReadySeconds, obs.ready, "every node ready in status"},
		{&r.ConnectedSeconds, obs.connected, "every network Connected with every node ready"},
		{&r.SyncedSeconds, obs.synced, "every network Synced with every node ready"},
	} {
		t, err := obs.wait(m.m, time.Until(start.Add(timeout)), m.what)
		if err != nil {
			return r, err
		}
		*m.at = t.Sub(start).Seconds()
	}
	settled, err := b.settle(obs, r.namespace, start.Add(timeout))
	if err != nil {
		return r, err
	}
	r.SettledSeconds = settled.Sub(start).Seconds()
	r.StatusLag, r.AfterLastReady = obs.lag(), obs.afterLastReady()
	countsAfter, err := readCounts(ctx, b.cs, op.metrics)
	if err != nil {
		return r, err
	}
	writes, err := b.audit.writes(start, time.Time{})
	if err != nil {
		return r, err
	}
	r.Load = countsAfter.since(countsBefore, len(writes))
	untilSettled := operatorWrites{}
	for _, e := range writes {
		if !e.Received.After(settled) {
			untilSettled = append(untilSettled, e)
		}
	}
	r.Writes = writeFigures(untilSettled.in(r.namespace), untilSettled.in(cluster.OperatorNamespace), s.Networks)
	if r.Writes.EventReasons, err = b.eventReasons(ctx, r.namespace); err != nil {
		return r, err
	}
	rss, cpu, err := processStats(op.Pid())
	r.PeakRSSMiB, r.CPUSeconds = rss, cpu-cpuBefore
	return r, err
}

// settle waits until the size has settled: every network Ready, Connected and Synced,
// and no write of the operator in the size's namespace for the quiet window since then
// and since its last write. It returns the later of the moment the networks were all
// so and the operator's last write there: when the size settled.
func (b *bench) settle(obs *observer, namespace string, deadline time.Time) (time.Time, error) {
	for {
		writes, err := b.audit.writes(time.Time{}, time.Time{})
		if err != nil {
			return time.Time{}, err
		}
		wait := time.Second // until the networks are all steady again
		if since, ok := obs.steady(); ok {
			at := since
			if last := writes.in(namespace).last(); last.After(at) {
				at = last
			}
			if time.Since(at) >= b.quiet {
				return at, nil
			}
			wait = b.quiet - time.Since(at)
		}
		if time.Now().Add(wait).After(deadline) {
			return time.Time{}, fmt.Errorf("not settled by the deadline: no %s without an operator write once every network was Ready, Connected and Synced (%s)",
				b.quiet, obs.counts())
		}
		time.Sleep(wait)
	}
}

// eventReasons counts the operator's events in a namespace by reason: what the audit
// log, which records no request bodies, cannot say.
func (b *bench) eventReasons(ctx context.Context, namespace string) (map[string]int, error) {
	events := &corev1.EventList{}
	if err := b.k8s.List(ctx, events, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	reasons := map[string]int{}
	for _, e := range events.Items {
		if e.Source.Component == "bitcoin-operator" || e.ReportingController == "bitcoin-operator" {
			reasons[e.Reason] += max(1, int(e.Count))
		}
	}
	return reasons, nil
}

// deleteAll deletes a size's networks and times the garbage collector's work, counting
// the operator's writes meanwhile.
func (b *bench) deleteAll(ctx context.Context, r *sizeRun) error {
	start := time.Now()
	if err := forEach(r.Size.Networks, func(i int) error {
		return b.k8s.Delete(ctx, &bitcoinv1alpha1.BitcoinNetwork{
			ObjectMeta: metav1.ObjectMeta{Name: networkName(i), Namespace: r.namespace},
		})
	}); err != nil {
		return err
	}
	deleted, err := b.waitEmpty(ctx, r.namespace, timeoutFor(r.Size))
	if err != nil {
		return err
	}
	r.DeleteSeconds = deleted.Sub(start).Seconds()
	writes, err := b.audit.writes(start, deleted)
	r.DeleteWrites = len(writes.in(r.namespace))
	_ = b.k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.namespace}})
	return err
}

func timeoutFor(s Size) time.Duration {
	return 2*time.Minute + time.Duration(s.Networks*s.Nodes)*400*time.Millisecond
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

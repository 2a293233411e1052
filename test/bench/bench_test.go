package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// The bench's own arithmetic, on made-up input: what it reads from the audit log and
// the metrics, what BENCH_CHECK refuses, and that its plots stay small. The figures
// themselves come from `make bench-smoke` on the real control plane.

func write(verb, resource, subresource, namespace, name string) cluster.AuditEvent {
	var e cluster.AuditEvent
	e.Verb, e.ObjectRef.Resource, e.ObjectRef.Subresource = verb, resource, subresource
	e.ObjectRef.Namespace, e.ObjectRef.Name = namespace, name
	e.Received = time.Now()
	return e
}

func TestWriteFiguresTellKindsEventsAndNetworksApart(t *testing.T) {
	g := NewWithT(t)
	writes := operatorWrites{
		write("patch", "bitcoinnetworks", "status", "ns", "net-0"),
		write("patch", "bitcoinnetworks", "status", "ns", "net-0"),
		write("patch", "statefulsets", "", "ns", "net-0"),
		write("create", "events", "", "ns", "net-0.18a3f0c2d4e5f6a7"),
		write("create", "events", "", "ns", "net-0.18a3f0c2d4e5f6a8"),
		write("patch", "events", "", "ns", "net-0.18a3f0c2d4e5f6a8"),
		write("create", "events", "", "ns", "net-1.18a3f0c2d4e5f6a9"),
		write("patch", "bitcoinnetworks", "status", "other", "net-0"),
		write("update", "leases", "", cluster.OperatorNamespace, "bitcoin-operator.bitcoinops.io"),
	}
	f := writeFigures(writes.in("ns"), writes.in(cluster.OperatorNamespace), 4)
	g.Expect(f.Total).To(Equal(7))
	g.Expect(f.ByKind).To(Equal(map[string]int{"patch bitcoinnetworks/status": 2, "patch statefulsets": 1}))
	g.Expect(f.Events).To(Equal(4))
	g.Expect(f.LeaseWrites).To(Equal(1))
	g.Expect(f.EventsPerNetworkMax).To(Equal(3))
	g.Expect(f.EventsPerNetworkMean).To(Equal(1.0), "4 event writes over 4 networks, those without any counted")
	g.Expect(f.kinds()).To(Equal([]string{"patch bitcoinnetworks/status", "patch statefulsets"}))
}

func TestSumSeriesReadsOneCounterAndItsLabels(t *testing.T) {
	g := NewWithT(t)
	text := `# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",resource="pods",verb="LIST"} 12
apiserver_request_total{code="201",resource="events",verb="POST"} 3
apiserver_request_total{code="200",resource="bitcoinnetworks",subresource="status",verb="APPLY"} 2.5e+01
apiserver_request_total_other{verb="POST"} 1000
apiserver_request_total2 1000
`
	var all, writes float64
	sumSeries([]byte(text), "apiserver_request_total", func(labels string, v float64) {
		all += v
		if writeVerbs[label(labels, "verb")] {
			writes += v
		}
	})
	g.Expect(all).To(Equal(40.0))
	g.Expect(writes).To(Equal(28.0))
	var plain float64
	sumSeries([]byte("rest_client_requests_total 7\n"), "rest_client_requests_total", func(_ string, v float64) { plain += v })
	g.Expect(plain).To(Equal(7.0), "a counter without labels")
}

// complete is a report in which every figure was measured.
func complete() Report {
	res := Result{
		Size: Size{Networks: 1, Nodes: 3}, ChildrenSeconds: 0.1, ReadySeconds: 1, ConnectedSeconds: 2, SyncedSeconds: 2,
		SettledSeconds: 3, StatusLag: LagFigures{Count: 3}, AfterLastReady: LagFigures{Count: 1}, IdleSeconds: 120, RPCCallsPerNodeMinute: 6,
		Writes:        WriteFigures{Total: 20, ByKind: map[string]int{"patch bitcoinnetworks/status": 10}, Events: 2, EventsPerNetworkMax: 2},
		Load:          LoadFigures{APIServerRequests: 100, APIServerWrites: 50, OperatorRequests: 30, OperatorWrites: 20},
		DeleteSeconds: 0.2, PeakRSSMiB: 70, CPUSeconds: 0.4,
	}
	memory := res
	memory.IdleSeconds, memory.RPCCallsPerNodeMinute = 0, 0
	return Report{Results: []Result{res}, Memory: []Result{memory, memory},
		Hostile: &HostileResult{NetworksPerKind: 1, HealthyConnectedSeconds: 1, PeakRSSMiB: 80}}
}

func TestCheckRefusesWritesOnceSettledAndMissingFigures(t *testing.T) {
	g := NewWithT(t)
	g.Expect(complete().check()).To(Succeed())

	r := complete()
	r.Results[0].IdleWrites, r.Results[0].IdleWriteSamples = 1, []string{"patch bitcoinnetworks/status net-0"}
	g.Expect(r.check()).To(MatchError(ContainSubstring("1 writes once settled")))

	for name, spoil := range map[string]func(*Result){
		"Synced":   func(r *Result) { r.SyncedSeconds = 0 },
		"RPC":      func(r *Result) { r.RPCCallsPerNodeMinute = 0 },
		"events":   func(r *Result) { r.Writes.Events = 0 },
		"requests": func(r *Result) { r.Load.OperatorRequests = 0 },
		"lag":      func(r *Result) { r.StatusLag.Count = 2 },
		"after":    func(r *Result) { r.AfterLastReady.Count = 0 },
	} {
		r := complete()
		spoil(&r.Results[0])
		g.Expect(r.check()).NotTo(Succeed(), name)
	}
}

func TestPlotsAreSmallSVG(t *testing.T) {
	g := NewWithT(t)
	var results []Result
	for _, s := range []Size{{1, 3}, {10, 3}, {100, 3}, {1000, 3}, {1, 100}} {
		n := float64(s.Networks)
		results = append(results, Result{Size: s, ChildrenSeconds: n / 10, ReadySeconds: n / 2, ConnectedSeconds: n/2 + 1, SyncedSeconds: n/2 + 1,
			Writes: WriteFigures{Total: 30 * s.Networks, Events: 10 * s.Networks, ByKind: map[string]int{
				"patch bitcoinnetworks/status": 20 * s.Networks, "patch statefulsets": s.Networks, "create secrets": s.Networks, "update leases": 1}}})
	}
	dir := t.TempDir()
	g.Expect(plotTimes(results, filepath.Join(dir, timesPlot))).To(Succeed())
	g.Expect(plotWrites(results, filepath.Join(dir, writesPlot))).To(Succeed())
	for _, name := range []string{timesPlot, writesPlot} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(strings.Contains(string(data), "<svg")).To(BeTrue(), name)
		g.Expect(len(data)).To(BeNumerically("<", 100<<10), name)
	}
	var md strings.Builder
	Report{Results: results}.markdown(&md)
	g.Expect(md.String()).To(ContainSubstring("| 1000x3 | 100.00 | 500.00 | 501.00 | 501.00 |"))
	g.Expect(md.String()).To(ContainSubstring("| patch bitcoinnetworks/status | 20 | 200 | 2000 | 20000 | 20 |"))
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// write writes the run's figures into bench/results/<date>/: results.json, report.md
// and the plots it shows. It returns the directory.
func (r Report) write() (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bench", "results", strings.ReplaceAll(r.Date, ":", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := plotTimes(r.Results, filepath.Join(dir, timesPlot)); err != nil {
		return "", fmt.Errorf("failed to plot the times: %w", err)
	}
	if err := plotWrites(r.Results, filepath.Join(dir, writesPlot)); err != nil {
		return "", fmt.Errorf("failed to plot the writes: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	r.markdown(f)
	return dir, f.Close()
}

const (
	timesPlot  = "times.svg"
	writesPlot = "writes.svg"
)

// markdown writes the report: the run's settings, a table of times, one of load, the
// writes by kind, the plots, and the memory and hostile runs.
func (r Report) markdown(w io.Writer) {
	fmt.Fprintf(w, "# Benchmark run of %s\n\n", r.Date)
	fmt.Fprintf(w, "Commit `%s`; %s, shared with the whole control plane (and, on this project's machine, with other users).\n", r.Commit, r.Machine)
	fmt.Fprintf(w, "kube-controller-manager `%s`; operator `%s`, its other flags at their defaults. ",
		strings.Join(r.ControllerManagerFlags, " "), strings.Join(r.OperatorFlags, " "))
	fmt.Fprintf(w, "Settled: every network Ready, Connected and Synced, and no operator write in the size's namespace for %.0f s; "+
		"idle window %.0f s with every size present. Run time %.0f s. See [docs/benchmarks.md](../../../docs/benchmarks.md) for what each figure is.\n\n",
		r.QuietSeconds, r.IdleSeconds, r.RunSeconds)

	fmt.Fprintln(w, "## Time (seconds from applying the networks)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | children | all nodes ready | Connected | Synced | settled | status lag p50 / p99 / max | Connected and Synced after a network's last pod Ready, p50 / p99 / max | delete |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, res := range r.Results {
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.3f / %.3f / %.3f | %.2f / %.2f / %.2f | %.2f |\n", res.Size,
			res.ChildrenSeconds, res.ReadySeconds, res.ConnectedSeconds, res.SyncedSeconds, res.SettledSeconds,
			res.StatusLag.P50, res.StatusLag.P99, res.StatusLag.Max,
			res.AfterLastReady.P50, res.AfterLastReady.P99, res.AfterLastReady.Max, res.DeleteSeconds)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "![time to ready, Connected and Synced against the number of networks](%s)\n\n", timesPlot)

	fmt.Fprintln(w, "## Load")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | operator writes until settled (events) | per node | events per network max / mean | writes once settled (+ Lease) | RPC calls per node per minute, settled | API server requests (operator's share) | API server writes (operator's share) | peak RSS | CPU |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, res := range r.Results {
		nodes := float64(res.Size.Networks * res.Size.Nodes)
		fmt.Fprintf(w, "| %s | %d (%d) | %.1f | %d / %.1f | %d (+%d) | %.1f | %d (%s) | %d (%s) | %.1f MiB | %.2f s |\n", res.Size,
			res.Writes.Total, res.Writes.Events, float64(res.Writes.Total)/nodes,
			res.Writes.EventsPerNetworkMax, res.Writes.EventsPerNetworkMean,
			res.IdleWrites, res.IdleLeaseWrites, res.RPCCallsPerNodeMinute,
			res.Load.APIServerRequests, share(res.Load.OperatorRequests, res.Load.APIServerRequests),
			res.Load.APIServerWrites, share(res.Load.OperatorWrites, res.Load.APIServerWrites),
			res.PeakRSSMiB, res.CPUSeconds)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "## Operator writes until settled, by kind")
	fmt.Fprintln(w)
	sizeColumns(w, "kind", r.Results)
	for _, kind := range append(allKinds(r.Results), "events", "(Lease renewals, apart)") {
		fmt.Fprintf(w, "| %s |", kind)
		for _, res := range r.Results {
			n := res.Writes.ByKind[kind]
			switch kind {
			case "events":
				n = res.Writes.Events
			case "(Lease renewals, apart)":
				n = res.Writes.LeaseWrites
			}
			fmt.Fprintf(w, " %d |", n)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "![operator writes per node until settled, by kind](%s)\n\n", writesPlot)

	fmt.Fprintln(w, "Events by reason, from the Events themselves once settled:")
	fmt.Fprintln(w)
	sizeColumns(w, "reason", r.Results)
	for _, reason := range eventReasons(r.Results) {
		fmt.Fprintf(w, "| %s |", reason)
		for _, res := range r.Results {
			fmt.Fprintf(w, " %d |", res.Writes.EventReasons[reason])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	if len(r.Memory) > 0 {
		fmt.Fprintln(w, "## Memory beside unrelated pods (first size again, a fresh operator each)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| run | all nodes ready | Synced | peak RSS | CPU |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
		for _, res := range r.Memory {
			fmt.Fprintf(w, "| %s with %d unrelated pods | %.2f s | %.2f s | %.1f MiB | %.2f s |\n", res.Size, res.UnrelatedPods,
				res.ReadySeconds, res.SyncedSeconds, res.PeakRSSMiB, res.CPUSeconds)
		}
		fmt.Fprintln(w)
	}
	if h := r.Hostile; h != nil {
		fmt.Fprintln(w, "## Hostile tenants (a fresh operator)")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%d networks of each hostile kind: a healthy 3-node network beside them Connected after %.2f s; the operator's peak RSS %.1f MiB.\n",
			h.NetworksPerKind, h.HealthyConnectedSeconds, h.PeakRSSMiB)
	}
}

// share is part's share of whole, as a percentage.
func share(part, whole int) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(part)/float64(whole))
}

// eventReasons returns every reason of an event of any size, sorted.
func eventReasons(results []Result) []string {
	var reasons []string
	for _, res := range results {
		for reason := range res.Writes.EventReasons {
			if !slices.Contains(reasons, reason) {
				reasons = append(reasons, reason)
			}
		}
	}
	slices.Sort(reasons)
	return reasons
}

// allKinds returns every kind of write of any size, the most frequent first.
func allKinds(results []Result) []string {
	total := map[string]int{}
	for _, res := range results {
		for k, n := range res.Writes.ByKind {
			total[k] += n
		}
	}
	kinds := make([]string, 0, len(total))
	for k := range total {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if total[a] != total[b] {
			return total[b] - total[a]
		}
		return strings.Compare(a, b)
	})
	return kinds
}

func printHeader() {
	fmt.Printf("%-9s %8s %8s %9s %8s %8s %21s %7s %6s %12s %8s %8s %8s %7s\n",
		"size", "children", "ready", "Connected", "Synced", "settled", "lag p50/p99/max", "writes", "ev/net", "idle writes", "RPC/n/m", "delete", "peak RSS", "CPU")
}

func printRow(r Result) {
	name := r.Size.String()
	if r.UnrelatedPods > 0 {
		name += fmt.Sprintf("+%dp", r.UnrelatedPods)
	}
	idle := "-"
	if r.IdleSeconds > 0 {
		idle = fmt.Sprintf("%d (+%d L)", r.IdleWrites, r.IdleLeaseWrites)
	}
	fmt.Printf("%-9s %7.2fs %7.2fs %8.2fs %7.2fs %7.2fs %5.3f/%5.3f/%5.3fs %7d %6d %12s %8.1f %7.2fs %6.1fMi %6.2fs\n",
		name, r.ChildrenSeconds, r.ReadySeconds, r.ConnectedSeconds, r.SyncedSeconds, r.SettledSeconds,
		r.StatusLag.P50, r.StatusLag.P99, r.StatusLag.Max, r.Writes.Total, r.Writes.EventsPerNetworkMax, idle,
		r.RPCCallsPerNodeMinute, r.DeleteSeconds, r.PeakRSSMiB, r.CPUSeconds)
}

// sizeColumns writes the head of a table with a column per size.
func sizeColumns(w io.Writer, first string, results []Result) {
	fmt.Fprintf(w, "| %s |", first)
	for _, res := range results {
		fmt.Fprintf(w, " %s |", res.Size)
	}
	fmt.Fprint(w, "\n| --- |")
	for range results {
		fmt.Fprint(w, " ---: |")
	}
	fmt.Fprintln(w)
}

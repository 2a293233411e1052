package main

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plots are SVG without embedded fonts: a few kilobytes each, readable on any page
// that shows the report.
const plotWidth, plotHeight = 16 * vg.Centimeter, 10 * vg.Centimeter

// plotTimes plots the times to children, to every node ready, to Connected and to
// Synced against the number of networks, for the sizes of the most common network
// size (3 nodes by default); the others are in the report's table.
func plotTimes(results []Result, path string) error {
	nodes := commonNodes(results)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Networks of %d nodes: seconds until every network is ...", nodes)
	p.X.Label.Text = "networks"
	p.Y.Label.Text = "seconds from applying them"
	series := []struct {
		name string
		of   func(Result) float64
	}{
		{"children exist", func(r Result) float64 { return r.ChildrenSeconds }},
		{"all nodes ready", func(r Result) float64 { return r.ReadySeconds }},
		{"Connected", func(r Result) float64 { return r.ConnectedSeconds }},
		{"Synced", func(r Result) float64 { return r.SyncedSeconds }},
	}
	var lines []any
	for _, s := range series {
		var xys plotter.XYs
		for _, r := range results {
			if r.Size.Nodes == nodes {
				xys = append(xys, plotter.XY{X: float64(r.Size.Networks), Y: s.of(r)})
			}
		}
		lines = append(lines, s.name, xys)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	if spread(results, nodes) >= 10 {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(plotWidth, plotHeight, path)
}

// commonNodes is the number of nodes most sizes have, the first size's on a tie.
func commonNodes(results []Result) int {
	count := map[int]int{}
	best := 0
	for _, r := range results {
		count[r.Size.Nodes]++
		if best == 0 || count[r.Size.Nodes] > count[best] {
			best = r.Size.Nodes
		}
	}
	return best
}

// spread is the ratio of the largest to the smallest number of networks of the sizes
// of nodes nodes.
func spread(results []Result, nodes int) float64 {
	lo, hi := 0, 0
	for _, r := range results {
		if r.Size.Nodes != nodes {
			continue
		}
		if lo == 0 || r.Size.Networks < lo {
			lo = r.Size.Networks
		}
		hi = max(hi, r.Size.Networks)
	}
	if lo == 0 {
		return 0
	}
	return float64(hi) / float64(lo)
}

// writeGroup puts a kind of write in one of the plot's groups.
func writeGroup(kind string) string {
	switch {
	case strings.HasSuffix(kind, "bitcoinnetworks/status"):
		return "status"
	case strings.Contains(kind, " secrets"):
		return "Secrets"
	case strings.Contains(kind, " statefulsets"), strings.Contains(kind, " services"), strings.Contains(kind, " networkpolicies"):
		return "StatefulSets, Services, NetworkPolicies"
	default:
		return "other"
	}
}

// plotWrites plots the operator's writes per node until settled, grouped by kind, one
// group of bars per size.
func plotWrites(results []Result, path string) error {
	groups := []string{"status", "StatefulSets, Services, NetworkPolicies", "Secrets", "events", "other"}
	p := plot.New()
	p.Title.Text = "Operator writes per node until settled, by kind"
	p.Y.Label.Text = "writes per node"
	var names []string
	for _, r := range results {
		names = append(names, r.Size.String())
	}
	top := 0.0
	width := vg.Points(float64(plotWidth.Points()) * 0.6 / float64(len(results)*len(groups)+1))
	for i, g := range groups {
		values := make(plotter.Values, len(results))
		for j, r := range results {
			n := 0
			if g == "events" {
				n = r.Writes.Events
			}
			for kind, c := range r.Writes.ByKind {
				if writeGroup(kind) == g {
					n += c
				}
			}
			values[j] = float64(n) / float64(r.Size.Networks*r.Size.Nodes)
			top = max(top, values[j])
		}
		bars, err := plotter.NewBarChart(values, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(float64(i)-float64(len(groups)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(g, bars)
	}
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, top*1.5 // room for the legend above the bars
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p.Save(plotWidth, plotHeight, path)
}

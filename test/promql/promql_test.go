// Package promql checks every PromQL expression the project ships, the alert rules'
// (config/prometheus/rules.yaml) and the Grafana dashboard's (config/grafana), with
// Prometheus' own parser, and that each names only metric families the operator
// exports. It is a Go module of its own: Prometheus' module pulls in a large tree of
// dependencies that the operator's go.mod should not carry for a test.
//
//	make test-promql     (or: cd test/promql && go test ./...)
package promql

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/bitcoinops/bitcoin-operator/internal/metrics"
)

const (
	rulesPath     = "../../config/prometheus/rules.yaml"
	dashboardPath = "../../config/grafana/dashboard.yaml"
)

// query is one PromQL expression and where it is.
type query struct{ where, expr string }

func TestAlertRulesParseAndUseExportedMetrics(t *testing.T) {
	queries := ruleQueries(t)
	if len(queries) < 6 {
		t.Fatalf("%d alert expressions in %s; the issue asks for at least 6 alerts", len(queries), rulesPath)
	}
	checkQueries(t, queries)
}

func TestDashboardQueriesParseAndUseExportedMetrics(t *testing.T) {
	queries := dashboardQueries(t)
	if len(queries) < 20 {
		t.Fatalf("only %d queries found in %s", len(queries), dashboardPath)
	}
	checkQueries(t, queries)
}

// The checker itself: a name the operator does not export, and an expression that
// does not parse, are refused.
func TestTheCheckRefusesUnknownNamesAndBadSyntax(t *testing.T) {
	known := exportedNames(t)
	for _, q := range []string{
		`bitcoin_operator_node_up == 0`,
		`rate(bitcoin_operator_rpc_failures[5m])`,
		`bitcoin_operator_rpc_call_duration_seconds`, // a histogram has no series of its bare name
		`sum by (network) (bitcoin_operator_network_synced`,
	} {
		if err := check(q, known); err == nil {
			t.Errorf("%q passed the check", q)
		}
	}
}

func checkQueries(t *testing.T, queries []query) {
	t.Helper()
	known := exportedNames(t)
	for _, q := range queries {
		if err := check(q.expr, known); err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
		}
	}
}

// check parses expr and returns an error naming each metric it selects that is not
// in known.
func check(expr string, known map[string]bool) error {
	ast, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("does not parse: %w", err)
	}
	var errs []error
	selectors := 0
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		if !known[vs.Name] {
			errs = append(errs, fmt.Errorf("metric %q is not exported by the operator", vs.Name))
		}
		return nil
	})
	if selectors == 0 {
		errs = append(errs, errors.New("selects no metric"))
	}
	return errors.Join(errs...)
}

// exportedNames are the series names the operator's /metrics serves: every family
// gathered from controller-runtime's registry (which the endpoint serves), and the
// operator's own families, described by their collectors, which must be registered
// there (a family with no series yet is not gathered). A histogram's series are
// its _bucket, _sum and _count. `up` is the series Prometheus adds per target.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true}
	add := func(name string, histogram bool) {
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
			return
		}
		names[name] = true
	}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		add(f.GetName(), f.GetType() == dto.MetricType_HISTOGRAM)
	}
	for _, c := range metrics.Collectors() {
		if err := ctrlmetrics.Registry.Register(c); !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			t.Fatalf("a family of internal/metrics is not in controller-runtime's registry: %v", err)
		}
		_, histogram := c.(*prometheus.HistogramVec)
		for _, name := range describedNames(c) {
			add(name, histogram)
		}
	}
	if !names["bitcoin_operator_node_ready"] || !names["bitcoin_operator_rpc_call_duration_seconds_bucket"] {
		t.Fatalf("the operator's families are missing from %d names", len(names))
	}
	return names
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames returns the names of the families a collector describes. A Desc
// shows its name only in its String form.
func describedNames(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	var out []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

func ruleQueries(t *testing.T) []query {
	t.Helper()
	var rule struct {
		Spec struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	readYAML(t, rulesPath, &rule)
	var out []query
	for _, g := range rule.Spec.Groups {
		for i, r := range g.Rules {
			out = append(out, query{fmt.Sprintf("%s: group %s, rule %d (%s)", rulesPath, g.Name, i, r.Alert), r.Expr})
		}
	}
	return out
}

// dashboardQueries returns every panel target's expression and every template
// variable's metric selector, with Grafana's variables replaced by values of their
// kind, as Grafana does before it sends a query.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var cm struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	readYAML(t, dashboardPath, &cm)
	if cm.Kind != "ConfigMap" || cm.Metadata.Labels["grafana_dashboard"] != "1" {
		t.Fatalf("%s: a %s labelled %v, not a ConfigMap labelled grafana_dashboard: \"1\" for Grafana's sidecar", dashboardPath, cm.Kind, cm.Metadata.Labels)
	}
	if len(cm.Data) != 1 {
		t.Fatalf("%s: %d data keys, want the dashboard's JSON alone", dashboardPath, len(cm.Data))
	}
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
				Query      json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	for key, js := range cm.Data {
		if err := json.Unmarshal([]byte(js), &dash); err != nil {
			t.Fatalf("%s: %s is not a dashboard's JSON: %v", dashboardPath, key, err)
		}
	}
	var out []query
	for _, p := range flatten(dash.Panels) {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %q, target %s", p.Title, tg.RefID), grafanaVariables(tg.Expr)})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(<selector>, <label>)", v.Name, q.Query)
		}
		out = append(out, query{"variable " + v.Name, grafanaVariables(m[1])})
	}
	return out
}

type panel struct {
	Type, Title string
	Targets     []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

var variable = regexp.MustCompile(`\$\{?(\w+)\}?`)

// grafanaVariables replaces Grafana's interval variables by a duration, and the
// dashboard's own ($namespace, $network) by a value.
func grafanaVariables(expr string) string {
	return variable.ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		if slices.Contains([]string{"__rate_interval", "__interval", "__range"}, name) {
			return "5m"
		}
		return name
	})
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Package prometheus runs a real Prometheus server against the operator on the local
// control plane (test/cluster), for its suite (build tag prometheus) and `make demo`,
// and turns the shipped PrometheusRule (config/prometheus/rules.yaml) into the rules
// file that promtool and the server read. There is no Prometheus Operator here: the
// server gets a static scrape configuration that does what the ServiceMonitor asks.
package prometheus

import (
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// RulesPath is the PrometheusRule, relative to the repository's root.
const RulesPath = "config/prometheus/rules.yaml"

// RuleGroups returns the rule groups of the PrometheusRule at path as a Prometheus
// rules file: its spec.groups, unchanged, under `groups`, as the Prometheus Operator
// hands them to its servers.
func RuleGroups(path string) ([]byte, error) {
	groups, err := ruleGroups(path)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(map[string]any{"groups": groups})
}

// RuleGroupsFor is RuleGroups with every rule's `for` shortened to at most d: what a
// test that cannot wait minutes evaluates. The expressions, labels and annotations
// stay as shipped; promtool's unit tests prove the shipped durations.
func RuleGroupsFor(path string, d time.Duration) ([]byte, error) {
	groups, err := ruleGroups(path)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			rule := r.(map[string]any)
			if f, ok := rule["for"].(string); ok {
				shipped, err := time.ParseDuration(f)
				if err != nil {
					return nil, fmt.Errorf("%s: rule %v: for %q: %w", path, rule["alert"], f, err)
				}
				if shipped > d {
					rule["for"] = d.String()
				}
			}
		}
	}
	return yaml.Marshal(map[string]any{"groups": groups})
}

func ruleGroups(path string) ([]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rule struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rule.Kind != "PrometheusRule" {
		return nil, fmt.Errorf("%s: kind %q, not PrometheusRule", path, rule.Kind)
	}
	if len(rule.Spec.Groups) == 0 {
		return nil, fmt.Errorf("%s: no spec.groups", path)
	}
	return rule.Spec.Groups, nil
}

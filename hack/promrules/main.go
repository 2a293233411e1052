// Command promrules prints the rule groups of the shipped PrometheusRule as a
// Prometheus rules file, for promtool (make test-prometheus-rules):
//
//	go run ./hack/promrules [config/prometheus/rules.yaml] > rules.yaml
package main

import (
	"fmt"
	"os"

	"github.com/bitcoinops/bitcoin-operator/test/prometheus"
)

func main() {
	path := prometheus.RulesPath
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	data, err := prometheus.RuleGroups(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "promrules:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(data)
}

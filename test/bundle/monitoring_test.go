package bundle_test

import (
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
)

// TestBundleShipsNoPrometheusOperatorObjects: OLM applies every object of a bundle,
// and an InstallPlan with a kind whose CRD the cluster lacks fails whole. Most
// clusters have no Prometheus Operator, so the ServiceMonitor and PrometheusRule of
// config/prometheus stay out of the bundle (config/manifests does not include them);
// docs/monitoring.md says how to apply them.
func TestBundleShipsNoPrometheusOperatorObjects(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir("../../bundle")
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	if len(bundle.Objects) == 0 {
		t.Fatal("bundle/ has no objects")
	}
	for _, o := range bundle.Objects {
		if strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/") {
			t.Errorf("bundle/ ships %s %s (%s): an InstallPlan fails in a cluster without the Prometheus Operator's CRDs",
				o.GetKind(), o.GetName(), o.GetAPIVersion())
		}
	}
}

// TestCapabilityLevelClaimsWhatIsProven: the Operator SDK's capability levels are
// cumulative. Deep Insights (level 4, which the metrics, alerts and dashboard are part
// of) needs Seamless Upgrades of the operand and Full Lifecycle (backup, restore) below
// it, which the operator does not do for Bitcoin Core: so Basic Install, with the
// monitoring listed in the description.
func TestCapabilityLevelClaimsWhatIsProven(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir("../../bundle")
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	if got := bundle.CSV.Annotations["capabilities"]; got != "Basic Install" {
		t.Errorf("the CSV claims capability level %q", got)
	}
	for _, want := range []string{"metrics", "alerts", "runbook", "Grafana dashboard", "config/prometheus"} {
		if !strings.Contains(bundle.CSV.Spec.Description, want) {
			t.Errorf("the CSV's description does not mention %q", want)
		}
	}
}

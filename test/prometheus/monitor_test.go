package prometheus

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// The ServiceMonitor selects the operator's metrics Service and scrapes its HTTPS
// port as the static configuration of Start does (which test/prometheus proves
// against the running operator): same port, scheme, path, token and labels kept;
// and the job it gives the target, the Service's name after config/default's
// namePrefix, is the one BitcoinOperatorDown selects.
func TestServiceMonitorScrapesTheMetricsService(t *testing.T) {
	g := NewWithT(t)
	var monitor struct {
		Spec struct {
			Endpoints []struct {
				Port, Path, Scheme, BearerTokenFile string
				HonorLabels                         bool
				TLSConfig                           struct{ InsecureSkipVerify bool } `json:"tlsConfig"`
			}
			Selector struct{ MatchLabels map[string]string }
		}
	}
	var service struct {
		Metadata struct {
			Name   string
			Labels map[string]string
		}
		Spec struct{ Ports []struct{ Name string } }
	}
	var kustomization struct{ NamePrefix string }
	readYAML(t, "config/prometheus/monitor.yaml", &monitor)
	readYAML(t, "config/default/metrics_service.yaml", &service)
	readYAML(t, "config/default/kustomization.yaml", &kustomization)

	for k, v := range monitor.Spec.Selector.MatchLabels {
		g.Expect(service.Metadata.Labels).To(HaveKeyWithValue(k, v), "the ServiceMonitor's selector")
	}
	g.Expect(monitor.Spec.Endpoints).To(HaveLen(1))
	e := monitor.Spec.Endpoints[0]
	g.Expect(service.Spec.Ports).To(ContainElement(HaveField("Name", e.Port)))
	g.Expect(e.Scheme).To(Equal("https"))
	g.Expect(e.Path).To(Equal("/metrics"))
	g.Expect(e.BearerTokenFile).To(Equal("/var/run/secrets/kubernetes.io/serviceaccount/token"))
	g.Expect(e.HonorLabels).To(BeTrue(), "the series' namespace label is the network's")
	g.Expect(e.TLSConfig.InsecureSkipVerify).To(BeTrue(), "the operator's certificate is self-signed by default")
	g.Expect(kustomization.NamePrefix + service.Metadata.Name).To(Equal(Job))

	rules, err := os.ReadFile(filepath.Join(root(t), RulesPath))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(rules)).To(ContainSubstring(`up{job="` + Job + `"}`))
}

// RuleGroupsFor shortens every `for` longer than asked and changes nothing else.
func TestRuleGroupsForShortensOnlyFor(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(root(t), RulesPath)
	shipped, err := RuleGroups(path)
	g.Expect(err).NotTo(HaveOccurred())
	short, err := RuleGroupsFor(path, 3*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	var a, b struct {
		Groups []struct {
			Rules []map[string]any
		}
	}
	g.Expect(yaml.Unmarshal(shipped, &a)).To(Succeed())
	g.Expect(yaml.Unmarshal(short, &b)).To(Succeed())
	g.Expect(b.Groups).To(HaveLen(len(a.Groups)))
	rules := 0
	for i := range a.Groups {
		for j, r := range a.Groups[i].Rules {
			s := b.Groups[i].Rules[j]
			g.Expect(s["for"]).To(Equal("3s"), "rule %v", r["alert"])
			delete(r, "for")
			delete(s, "for")
			g.Expect(s).To(Equal(r))
			rules++
		}
	}
	g.Expect(rules).To(BeNumerically(">=", 6))
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func readYAML(t *testing.T, rel string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

package prometheus

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// Job is the scrape job's name: what the ServiceMonitor gives the target (the metrics
// Service's name), and what BitcoinOperatorDown selects.
const Job = "bitcoin-operator-controller-manager-metrics-service"

// The monitoring stack's identity: a ServiceAccount bound to the metrics-reader
// ClusterRole, as docs/monitoring.md tells a user to bind theirs.
const (
	Namespace          = "monitoring"
	ServiceAccount     = "prometheus"
	MetricsReaderRole  = "bitcoin-operator-metrics-reader"
	metricsRoleBinding = "prometheus-bitcoin-operator"
)

// Binary returns the path of the prometheus binary, building it if it is missing
// (hack/prometheus.sh).
func Binary(ctx context.Context) (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, filepath.Join(root, "hack", "prometheus.sh")).Output()
	if err != nil {
		return "", fmt.Errorf("hack/prometheus.sh: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "prometheus"), nil
}

// ScraperToken creates the monitoring namespace, its ServiceAccount and a
// ClusterRoleBinding to the metrics-reader role (config/rbac, applied by
// InstallOperator), and returns a token of that ServiceAccount.
func ScraperToken(ctx context.Context, cs kubernetes.Interface) (string, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	if _, err := cs.CoreV1().ServiceAccounts(Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ServiceAccount}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: metricsRoleBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: MetricsReaderRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace, Name: ServiceAccount}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return cluster.Token(ctx, cs, Namespace, ServiceAccount)
}

// Options shape a Prometheus server.
type Options struct {
	// Binary is the prometheus binary.
	Binary string
	// Target is the operator's metrics endpoint, host:port on loopback.
	Target string
	// Token is the bearer token the server scrapes with.
	Token string
	// Rules is the content of its rules file (RuleGroups, RuleGroupsFor); empty: none.
	Rules []byte
	// Interval is the scrape and evaluation interval.
	Interval time.Duration
}

// Server is a running Prometheus.
type Server struct {
	// URL is its HTTP API's base, http://127.0.0.1:<port>.
	URL  string
	Proc *cluster.Process
}

// Start runs Prometheus as a process of the cluster, listening on 127.0.0.1 only,
// with its TSDB in the cluster's directory, and returns once it is ready. It scrapes
// the operator as the ServiceMonitor (config/prometheus/monitor.yaml) asks: HTTPS,
// the token as bearer, the operator's self-signed certificate accepted, the series'
// own namespace label kept (honor_labels).
func Start(ctx context.Context, lc *cluster.Cluster, opts Options) (*Server, error) {
	dir := filepath.Join(lc.Dir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(opts.Token), 0o600); err != nil {
		return nil, err
	}
	config := map[string]any{
		"global": map[string]any{"scrape_interval": opts.Interval.String(), "evaluation_interval": opts.Interval.String()},
		"scrape_configs": []any{map[string]any{
			"job_name":       Job,
			"scheme":         "https",
			"honor_labels":   true,
			"authorization":  map[string]any{"credentials_file": filepath.Join(dir, "token")},
			"tls_config":     map[string]any{"insecure_skip_verify": true},
			"static_configs": []any{map[string]any{"targets": []string{opts.Target}}},
		}},
	}
	if len(opts.Rules) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), opts.Rules, 0o644); err != nil {
			return nil, err
		}
		config["rule_files"] = []string{filepath.Join(dir, "rules.yaml")}
	}
	data, err := yaml.Marshal(config)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), data, 0o644); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", cluster.FreePort())
	proc, err := lc.StartProcess("prometheus", opts.Binary, []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, Proc: proc}
	err = cluster.Poll(ctx, time.Minute, "Prometheus to be ready", func() (bool, error) {
		if exited, err := proc.Exited(); exited {
			return false, fmt.Errorf("prometheus exited: %v", err)
		}
		resp, err := http.Get(s.URL + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return s, err
}

// Alert is one alert of /api/v1/alerts.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// Alerts returns the server's active alerts (pending and firing); resolved alerts
// are not among them.
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	return data.Alerts, s.get(ctx, "/api/v1/alerts", &data)
}

// Sample is one series of an instant query's vector.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Query evaluates an instant PromQL query.
func (s *Server) Query(ctx context.Context, q string) ([]Sample, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []Sample `json:"result"`
	}
	if err := s.get(ctx, "/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: a %s, not a vector", q, data.ResultType)
	}
	return data.Result, nil
}

// Target is one scrape target of /api/v1/targets.
type Target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

// Targets returns the active scrape targets.
func (s *Server) Targets(ctx context.Context) ([]Target, error) {
	var data struct {
		ActiveTargets []Target `json:"activeTargets"`
	}
	return data.ActiveTargets, s.get(ctx, "/api/v1/targets", &data)
}

func (s *Server) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var envelope struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	if envelope.Status != "success" {
		return fmt.Errorf("GET %s: %s", path, envelope.Error)
	}
	return json.Unmarshal(envelope.Data, into)
}

// Scrape asks the operator's metrics endpoint as a scraper would, with token as
// bearer (none when empty), and returns the HTTP status and body.
func Scrape(ctx context.Context, target, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+target+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the operator's self-signed certificate
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

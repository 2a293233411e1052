// Package cluster runs a local Kubernetes control plane from real binaries on
// loopback: etcd, kube-apiserver (RBAC, PodSecurity, OwnerReferencesPermissionEnforcement,
// an audit log), kube-controller-manager (garbage collector, StatefulSet controller),
// kube-scheduler, and kwok playing the kubelet of a few fake Nodes, whose pods turn
// Running and Ready with IPs from a 127.N.0.0/16 range of the control plane's own. No
// component ever dials an address outside 127.0.0.0/8. The e2e suite, `make demo` and
// the bench use it.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/loopback"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options shape a control plane. The zero value is a usable default.
type Options struct {
	// Dir holds the data, logs and kubeconfigs. Empty: a new temporary directory. Stop
	// removes the directory it created, and a given one with RemoveDir.
	Dir       string
	RemoveDir bool
	// Assets is the directory of the binaries. Empty: hack/kube-assets.sh provides it.
	Assets string
	// Nodes is the number of fake Nodes (default 3), each with room for PodsPerNode
	// pods (default 250).
	Nodes, PodsPerNode int
	// PodReadyDelay is how long kwok waits before it marks a pod Ready, as a readiness
	// probe's initial delay would.
	PodReadyDelay time.Duration
	// AuditUsers are the users whose write requests the audit log records.
	AuditUsers []string
	// ControllerManagerFlags are added to kube-controller-manager's command line.
	ControllerManagerFlags []string
	// NodeLease is how long a fake Node's Lease lasts (default 40 s); kwok renews it
	// four times as often. Shorter leases let the node lifecycle controller notice a
	// lost Node sooner, with a shorter --node-monitor-grace-period.
	NodeLease time.Duration
	// Log receives progress messages; nil discards them.
	Log io.Writer
}

// Cluster is a running control plane.
type Cluster struct {
	// Dir holds everything the cluster writes.
	Dir string
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// Config is the admin's client configuration.
	Config *rest.Config
	// PodCIDR is the loopback range kwok takes pod IPs from.
	PodCIDR string
	// AuditLog is the path of the API server's audit log (JSON lines).
	AuditLog string
	// Assets is the directory of the binaries, kubectl among them.
	Assets string

	opts      Options
	ownDir    bool
	mu        sync.Mutex
	processes []*Process
	stopOnce  sync.Once
	cancel    context.CancelFunc
	signals   chan os.Signal
	// podRange holds PodCIDR for this process alone.
	podRange *loopback.Range
	// etcd and apiServer can be stopped and started again, as fault tests do.
	etcd, apiServer *component
	adminToken      string
}

// component is a process the cluster can stop and start again with the same command
// line and data, answering on the same address.
type component struct {
	name, path string
	args       []string
	health     string
	proc       *Process
}

// Start builds what is missing and starts a control plane, returning once fake Nodes
// are Ready and schedulable. On error, whatever was started is stopped.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.PodsPerNode == 0 {
		opts.PodsPerNode = 250
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.NodeLease == 0 {
		opts.NodeLease = 40 * time.Second
	}
	c = &Cluster{opts: opts, Dir: opts.Dir}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "bitcoin-operator-cluster-"); err != nil {
			return nil, err
		}
	}
	c.ownDir = opts.Dir == "" || opts.RemoveDir
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	c.handleSignals()
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if c.Assets = opts.Assets; c.Assets == "" {
		if c.Assets, err = kubeAssets(); err != nil {
			return nil, err
		}
	}
	if c.podRange, err = loopback.Claim(); err != nil {
		return nil, err
	}
	c.PodCIDR = c.podRange.CIDR()

	start := time.Now()
	etcdURL, err := c.startEtcd(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx, etcdURL); err != nil {
		return nil, err
	}
	if err := c.startControllers(); err != nil {
		return nil, err
	}
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	go provisionVolumes(ctx, cs)
	if err := c.createNodes(ctx, cs); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "Control plane schedulable after %.1f s (pods from %s, files in %s)\n",
		time.Since(start).Seconds(), c.PodCIDR, c.Dir)
	return c, nil
}

// Stop stops every process the cluster started, and removes its directory if Start
// created it.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		if c.signals != nil {
			signal.Stop(c.signals)
		}
		if c.cancel != nil {
			c.cancel()
		}
		c.mu.Lock()
		procs := c.processes
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- { // the reverse of their start
			_ = procs[i].Stop(10 * time.Second)
		}
		if c.ownDir {
			_ = os.RemoveAll(c.Dir)
		}
		if c.podRange != nil {
			c.podRange.Release()
		}
	})
}

// handleSignals stops the cluster when the process is interrupted, then exits.
func (c *Cluster) handleSignals() {
	c.signals = make(chan os.Signal, 1)
	signal.Notify(c.signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-c.signals; ok {
			fmt.Fprintln(os.Stderr, "Interrupted: stopping the local control plane")
			c.Stop()
			os.Exit(130)
		}
	}()
}

// Processes returns the processes the cluster started and stops with itself.
func (c *Cluster) Processes() []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Process(nil), c.processes...)
}

// StartProcess runs a process that the cluster stops with itself.
func (c *Cluster) StartProcess(name, path string, args []string, env ...string) (*Process, error) {
	p, err := StartProcess(c.Dir, name, path, args, env...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.processes = append(c.processes, p)
	c.mu.Unlock()
	return p, nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.Assets, name) }

func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	client, peer := FreePort(), FreePort()
	url := fmt.Sprintf("http://127.0.0.1:%d", client)
	c.etcd = &component{name: "etcd", path: c.bin("etcd"), health: url + "/health", args: []string{
		"--data-dir=" + filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=" + url, "--advertise-client-urls=" + url,
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", peer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", peer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", peer),
		"--unsafe-no-fsync", "--log-level=warn",
	}}
	return url, c.start(ctx, c.etcd, nil)
}

// start runs a component and waits until its health endpoint answers.
func (c *Cluster) start(ctx context.Context, comp *component, token *string) error {
	p, err := c.StartProcess(comp.name, comp.path, comp.args)
	if err != nil {
		return err
	}
	comp.proc = p
	return waitHTTP(ctx, comp.health, token, comp.name)
}

// StopAPIServer stops kube-apiserver, as an outage would; StartAPIServer brings it back
// on the same address with the same certificates.
func (c *Cluster) StopAPIServer() error { return c.apiServer.proc.Stop(10 * time.Second) }

// StartAPIServer starts kube-apiserver again after StopAPIServer and waits until it
// is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	return c.start(ctx, c.apiServer, &c.adminToken)
}

// RestartEtcd stops etcd and starts it again on its data, as a restart of the node
// it runs on would.
func (c *Cluster) RestartEtcd(ctx context.Context) error {
	if err := c.etcd.proc.Stop(10 * time.Second); err != nil {
		return err
	}
	return c.start(ctx, c.etcd, nil)
}

func (c *Cluster) startAPIServer(ctx context.Context, etcdURL string) error {
	pki := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	saKey, err := writeServiceAccountKey(pki)
	if err != nil {
		return err
	}
	c.adminToken = randomToken()
	token := c.adminToken
	tokens := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	policy := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, auditPolicy(c.opts.AuditUsers), 0o644); err != nil {
		return err
	}
	c.AuditLog = filepath.Join(c.Dir, "audit.log")
	port := FreePort()
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	c.apiServer = &component{name: "kube-apiserver", path: c.bin("kube-apiserver"), health: url + "/readyz", args: []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + pki,
		"--service-account-key-file=" + saKey, "--service-account-signing-key-file=" + saKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--token-auth-file=" + tokens,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=PodSecurity,OwnerReferencesPermissionEnforcement",
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--audit-policy-file=" + policy, "--audit-log-path=" + c.AuditLog, "--audit-log-format=json",
		"--audit-log-mode=blocking",
	}}
	if err := c.start(ctx, c.apiServer, &token); err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(pki, "apiserver.crt"))
	if err != nil {
		return err
	}
	c.Config = &rest.Config{Host: url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS: 200, Burst: 400}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	return WriteKubeconfig(c.Kubeconfig, c.Config, "admin")
}

func (c *Cluster) startControllers() error {
	kcm := append([]string{
		"--kubeconfig=" + c.Kubeconfig,
		// No node IPAM (kwok hands out pod IPs) and no token controller (tokens come
		// from the TokenRequest API).
		"--controllers=*,-nodeipam,-serviceaccount-token",
		"--leader-elect=false", "--secure-port=0",
		"--node-monitor-grace-period=40s",
	}, c.opts.ControllerManagerFlags...)
	if _, err := c.StartProcess("kube-controller-manager", c.bin("kube-controller-manager"), kcm); err != nil {
		return err
	}
	if _, err := c.StartProcess("kube-scheduler", c.bin("kube-scheduler"), []string{
		"--kubeconfig=" + c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
	}); err != nil {
		return err
	}
	stages, err := writeStages(c.Dir, c.opts.PodReadyDelay)
	if err != nil {
		return err
	}
	_, err = c.StartProcess("kwok", c.bin("kwok"), []string{
		"--kubeconfig=" + c.Kubeconfig, "--config=" + stages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
		"--cidr=" + c.PodCIDR, "--node-ip=" + strings.Replace(c.PodCIDR, ".0.0/16", ".255.254", 1),
		fmt.Sprintf("--node-lease-duration-seconds=%d", int(c.opts.NodeLease.Seconds())), "--server-address=",
	})
	return err
}

// AddNode registers one more fake Node with a kwok of its own, which plays that Node's
// kubelet alone: killing the returned process is losing the Node (its heartbeats
// stop, and the node lifecycle controller marks it and its pods not ready). Its pods
// take IPs from 127.N.200.0/24 of the cluster's range, which the shared kwok, handing
// out addresses from the start of the range, does not reach.
func (c *Cluster) AddNode(ctx context.Context, name string) (*Process, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(c.PodCIDR, ".0.0/16")
	kwok, err := c.StartProcess("kwok-"+name, c.bin("kwok"), []string{
		"--kubeconfig=" + c.Kubeconfig, "--config=" + filepath.Join(c.Dir, "kwok-stages.yaml"),
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=" + name,
		"--cidr=" + prefix + ".200.0/24", "--node-ip=" + prefix + ".255.252",
		fmt.Sprintf("--node-lease-duration-seconds=%d", int(c.opts.NodeLease.Seconds())), "--server-address=",
	})
	if err != nil {
		return nil, err
	}
	node := fakeNode(name, name, c.opts.PodsPerNode)
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("failed to create Node %s: %w", name, err)
	}
	return kwok, Poll(ctx, 90*time.Second, "Node "+name+" schedulable", func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err == nil && nodeReady(n) && len(n.Spec.Taints) == 0, nil
	})
}

// fakeNode is a Node that the kwok selecting the annotation value plays.
func fakeNode(name, kwokValue string, pods int) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokAnnotation: kwokValue, "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", corev1.LabelHostname: name},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

const kwokAnnotation = "kwok.x-k8s.io/node"

// createNodes registers the fake Nodes and waits until the scheduler may use them:
// Ready, and without the not-ready taint the API server puts on every new Node.
func (c *Cluster) createNodes(ctx context.Context, cs kubernetes.Interface) error {
	for i := range c.opts.Nodes {
		node := fakeNode(fmt.Sprintf("kwok-node-%d", i), "fake", c.opts.PodsPerNode)
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("failed to create Node %s: %w", node.Name, err)
		}
	}
	return Poll(ctx, 90*time.Second, "schedulable Nodes", func() (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		schedulable := 0
		for _, n := range nodes.Items {
			if nodeReady(&n) && len(n.Spec.Taints) == 0 {
				schedulable++
			}
		}
		return schedulable == c.opts.Nodes, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Kubectl returns a kubectl command against the cluster as admin.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	return cmd
}

// WriteKubeconfig writes a kubeconfig for cfg's server, CA and bearer token.
func WriteKubeconfig(path string, cfg *rest.Config, user string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user}
	kc.CurrentContext = "local"
	return clientcmd.WriteToFile(*kc, path)
}

// kubeAssets returns the directory of the binaries, building what is missing.
func kubeAssets() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "kube-assets.sh"),
		"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/kube-assets.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// RepoRoot finds the repository's top directory from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "PROJECT")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the bitcoin-operator repository")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

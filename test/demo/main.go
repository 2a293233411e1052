// Command demo shows the operator at work on a machine without a cluster: it starts the
// local control plane of test/cluster, installs the CRD and RBAC, runs the operator as
// its ServiceAccount, applies config/samples and prints the nodes as they turn Ready.
// With no container runtime, a btcd per pod stands in for bitcoind (test/fleet,
// test/btcd): the operator wires them into one P2P network, the demo sets spec.mining so
// that the operator mines to height 10 and then a block every 5 s, nodes 0 and 1 taking
// turns, and it prints the network's conditions and each node's blocks as the operator
// reports them. The cluster stays up until
// Ctrl-C. Run it with `make demo`; `make demo-down` removes
// what a killed demo left behind.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/btcd"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
	promtest "github.com/bitcoinops/bitcoin-operator/test/prometheus"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	dir := os.Getenv("DEMO_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bitcoin-operator-demo")
	}
	if _, err := os.Stat(filepath.Join(dir, "pids")); err == nil {
		return fmt.Errorf("a demo seems to be running already (%s): stop it, or run `make demo-down`", dir)
	}
	ctx := context.Background()
	step("Starting a local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
	lc, err := cluster.Start(ctx, cluster.Options{
		Dir: dir, RemoveDir: true, Log: os.Stdout,
		// Fake pods turn Ready at once; wait a little, as bitcoind's readiness probe would.
		PodReadyDelay: 2 * time.Second,
	})
	if err != nil {
		return err
	}
	defer lc.Stop()

	step("Installing the CRD and RBAC (config/local), building and starting the operator as its ServiceAccount")
	kubeconfig, err := lc.InstallOperator(ctx)
	if err != nil {
		return err
	}
	binary, err := lc.BuildOperator(ctx)
	if err != nil {
		return err
	}
	// Asked every 5 s instead of 30 once settled, so that the blocks rise visibly. The
	// metrics endpoint on a port of the demo's choosing, for Prometheus.
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", cluster.FreePort())
	if _, err := lc.StartOperator("operator", binary, kubeconfig, "--peer-period=5s", "--metrics-bind-address="+metricsAddr); err != nil {
		return err
	}
	var promURL string
	if os.Getenv("DEMO_PROMETHEUS") != "" {
		step("Starting Prometheus: it scrapes the operator with a ServiceAccount's token and evaluates config/prometheus/rules.yaml")
		if promURL, err = startPrometheus(ctx, lc, metricsAddr); err != nil {
			return err
		}
		fmt.Printf("Prometheus: %s (its HTTP API; e.g. %s/api/v1/alerts)\n", promURL, promURL)
	}
	if err := writePids(lc); err != nil {
		return err
	}

	step("Building btcd, which stands in for bitcoind")
	fmt.Print(`No container runtime is available here, so kwok's pods run nothing, and bitcoind
cannot be had on this machine. btcd (github.com/btcsuite/btcd v0.25.0), a full Bitcoin
node in Go that speaks the same P2P protocol, stands in for it: one btcd per pod, in
regtest, listening on the pod's own IP (P2P on :18444), with a small proxy on :18443
that answers RPC as Bitcoin Core would. The operator wires them exactly as it wires
bitcoind.
`)
	btcdBinary, err := btcd.Binary()
	if err != nil {
		return err
	}

	step("Applying config/samples")
	root, _ := cluster.RepoRoot()
	if out, err := lc.Kubectl(ctx, "apply", "-f", filepath.Join(root, "config", "samples", "bitcoin_v1alpha1_bitcoinnetwork.yaml")).CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, out)
	}
	nodes, err := fleet.Start(ctx, fleet.Options[*btcd.Node]{
		Config: lc.Config, Namespace: "default", Network: "my-network",
		Start: fleet.Btcd(btcdBinary, filepath.Join(lc.Dir, "btcd")), Log: os.Stdout,
	})
	if err != nil {
		return err
	}
	defer nodes.Stop()
	if err := followNodes(ctx, lc, "default", "my-network"); err != nil {
		return err
	}
	out, _ := lc.Kubectl(ctx, "get", "btcnet").CombinedOutput()
	fmt.Printf("\n$ kubectl get btcnet\n%s", out)
	usage(lc, promURL)

	step("Setting spec.mining: the operator mines to height 10, then a block every 5 s, nodes 0 and 1 taking turns")
	// btcd pays only its --miningaddr (test/btcd/proxy_chain.go); with Bitcoin Core,
	// leave the address out and the operator generates a key into my-network-mining-key.
	mining := fmt.Sprintf(`{"spec":{"mining":{"minHeight":10,"interval":"5s","nodes":[0,1],"address":%q}}}`, btcd.MiningAddress)
	if out, err := lc.Kubectl(ctx, "patch", "btcnet", "my-network", "--type", "merge", "-p", mining).CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl patch: %w: %s", err, out)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go followChain(ctx, lc, "default", "my-network", done)
	<-stop
	close(done)
	fmt.Println("\nStopping btcd, the operator and the control plane...")
	return nil
}

// followChain prints the network's P2P conditions and each node's peers and blocks,
// as status shows them, whenever they change.
func followChain(ctx context.Context, lc *cluster.Cluster, namespace, name string, done <-chan struct{}) {
	c, err := client.New(lc.Config, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return
	}
	start := time.Now()
	last := ""
	for {
		n := &bitcoinv1alpha1.BitcoinNetwork{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, n); err == nil {
			line := fmt.Sprintf("Connected=%-7s Synced=%-7s Partitioned=%-7s", conditionStatus(n, bitcoinv1alpha1.ConditionConnected),
				conditionStatus(n, bitcoinv1alpha1.ConditionSynced), conditionStatus(n, bitcoinv1alpha1.ConditionPartitioned))
			for _, node := range n.Status.Nodes {
				line += fmt.Sprintf("  node %d: %s peers, %s blocks", node.Ordinal, orDash(node.Peers), orDash(node.Blocks))
			}
			if line != last {
				last = line
				fmt.Printf("  %6.1fs  %s\n", time.Since(start).Seconds(), line)
			}
		}
		select {
		case <-done:
			return
		case <-time.After(time.Second):
		}
	}
}

func conditionStatus(n *bitcoinv1alpha1.BitcoinNetwork, condition string) string {
	if c := meta.FindStatusCondition(n.Status.Conditions, condition); c != nil {
		return string(c.Status)
	}
	return "-"
}

func orDash[T int32 | int64](v *T) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}

// followNodes prints every change of the network's nodes until it is Available.
func followNodes(ctx context.Context, lc *cluster.Cluster, namespace, name string) error {
	c, err := client.NewWithWatch(lc.Config, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w, err := c.Watch(ctx, &bitcoinv1alpha1.BitcoinNetworkList{}, client.InNamespace(namespace))
	if err != nil {
		return err
	}
	defer w.Stop()
	start := time.Now()
	printed := map[string]bool{}
	for ev := range w.ResultChan() {
		n, ok := ev.Object.(*bitcoinv1alpha1.BitcoinNetwork)
		if !ok || n.Name != name {
			continue
		}
		for _, node := range n.Status.Nodes {
			line := fmt.Sprintf("node %d  %-5s  %-14s  %s", node.Ordinal, readyWord(node.Ready), node.IP, node.DNSName)
			if !printed[line] {
				printed[line] = true
				fmt.Printf("  %5.1fs  %s\n", time.Since(start).Seconds(), line)
			}
		}
		if meta.IsStatusConditionTrue(n.Status.Conditions, bitcoinv1alpha1.ConditionAvailable) && len(n.Status.Nodes) > 0 {
			return nil
		}
	}
	return fmt.Errorf("the network did not become Available: %w", ctx.Err())
}

func readyWord(ready bool) string {
	if ready {
		return "Ready"
	}
	return "-"
}

// writePids records the process groups, for `make demo-down`.
func writePids(lc *cluster.Cluster) error {
	var pids []string
	for _, p := range lc.Processes() {
		pids = append(pids, fmt.Sprint(p.Pid()))
	}
	return os.WriteFile(filepath.Join(lc.Dir, "pids"), []byte(strings.Join(pids, "\n")+"\n"), 0o644)
}

// startPrometheus runs a real Prometheus (hack/prometheus.sh) that scrapes the
// operator as the ServiceMonitor would, with the shipped alert rules as they are,
// and returns its URL.
func startPrometheus(ctx context.Context, lc *cluster.Cluster, metricsAddr string) (string, error) {
	binary, err := promtest.Binary(ctx)
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(lc.Config)
	if err != nil {
		return "", err
	}
	token, err := promtest.ScraperToken(ctx, cs)
	if err != nil {
		return "", err
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	rules, err := promtest.RuleGroups(filepath.Join(root, promtest.RulesPath))
	if err != nil {
		return "", err
	}
	s, err := promtest.Start(ctx, lc, promtest.Options{Binary: binary, Target: metricsAddr, Token: token, Rules: rules, Interval: 5 * time.Second})
	if err != nil {
		return "", err
	}
	return s.URL, nil
}

func usage(lc *cluster.Cluster, promURL string) {
	if promURL != "" {
		fmt.Printf(`
Prometheus scrapes the operator every 5 s at %[1]s, with the shipped alerts:

  curl -s '%[1]s/api/v1/query?query=bitcoin_operator_node_height'
  curl -s %[1]s/api/v1/alerts
`, promURL)
	}
	fmt.Printf(`
The cluster is yours until you press Ctrl-C. In another shell:

  export KUBECONFIG=%s
  kubectl get btcnet my-network -o yaml            # status.nodes, conditions
  kubectl scale btcnet/my-network --replicas=5     # watch: kubectl get pods -w
  kubectl delete btcnet/my-network                 # the garbage collector removes the rest

Split the network in two, watch both sides mine apart, and heal it. btcd, which plays
bitcoind here, cannot cut a live network (it has no bans, and redials an added node
after disconnectnode), so make the network anew, split from the start; on Bitcoin Core
a patch of spec.partitions splits a running network too (docs/chain-control.md):

  kubectl delete btcnet my-network
  kubectl apply -f - <<'YAML'
  apiVersion: bitcoin.bitcoinops.io/v1alpha1
  kind: BitcoinNetwork
  metadata:
    name: my-network
  spec:
    nodes: 4
    partitions: [[0, 1], [2, 3]]
    mining: {minHeight: 5, interval: 5s, nodes: [0, 2], address: %s}
  YAML
  kubectl get btcnet my-network -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
  kubectl patch btcnet my-network --type json -p '[{"op":"remove","path":"/spec/partitions"}]'
  kubectl get events --field-selector reason=Reorganized

Pods are kwok's: they are scheduled and turn Ready, but run no container (there is no
container runtime here); a btcd per pod listens on its IP instead. Logs of every
component, the operator's and each btcd's among them, are in %s.
If this process is killed, run `+"`make demo-down`"+`.
`, lc.Kubeconfig, btcd.MiningAddress, lc.Dir)
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

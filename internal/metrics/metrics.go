// Package metrics holds the operator's own metric families, registered with
// controller-runtime's metrics.Registry so that the manager's /metrics endpoint (HTTPS,
// authenticated and authorized) serves them beside controller-runtime's.
//
// Everything here comes from what the reconcilers already learn: no metric costs an
// RPC call or an API request. Label values are bounded: a namespace, a network's name,
// a node's ordinal, and small fixed sets (methods, outcomes, reasons, kinds); never an
// IP, a pod UID or an error's text. The series of a network or node that is gone are
// deleted when its reconciler forgets it (SetNodes, ForgetNodes, SetPeers, ForgetPeers),
// so their number follows the networks that exist.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// prefix is the Prometheus namespace of every family: the application's name.
const prefix = "bitcoin_operator_"

// Label names.
const (
	labelNamespace = "namespace"
	labelNetwork   = "network"
	labelOrdinal   = "ordinal"
)

var networkLabels = []string{labelNamespace, labelNetwork}
var nodeLabels = []string{labelNamespace, labelNetwork, labelOrdinal}

// Per network, from the status reconciler.
var (
	nodesDesired = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_nodes_desired",
		Help: "Nodes the network's spec.nodes asks for.",
	}, networkLabels)
	nodesReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_nodes_ready",
		Help: "Nodes whose pod is ready (status.readyNodes).",
	}, networkLabels)
	available = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_available",
		Help: "1 when the network's Available condition is True, else 0.",
	}, networkLabels)
	miningInterval = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_mining_interval_seconds",
		Help: "The network's spec.mining.interval: one block is due every so many seconds. Absent without one.",
	}, networkLabels)
	nodeReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "node_ready",
		Help: "1 when the node's pod is ready, else 0; one series per pod of the network's StatefulSet.",
	}, nodeLabels)
)

// Per network, from the peer reconciler's rounds.
var (
	connected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_connected",
		Help: "1 when the network's Connected condition is True, else 0.",
	}, networkLabels)
	synced = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_synced",
		Help: "1 when the network's Synced condition is True, else 0.",
	}, networkLabels)
	partitioned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_partitioned",
		Help: "1 when the network's Partitioned condition is True (split as spec.partitions asks), else 0.",
	}, networkLabels)
	bestHeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_best_height",
		Help: "The highest chain height (blocks) any ready node of the network reported.",
	}, networkLabels)
	tipChanged = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "network_tip_changed_timestamp_seconds",
		Help: "Unix time at which the operator last saw the network's best block change (or first saw it); time() minus it is the tip's age.",
	}, networkLabels)
	nodePeers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "node_peers",
		Help: "P2P connections the node reported (getpeerinfo), by direction: inbound or outbound.",
	}, append(nodeLabels[:3:3], "direction"))
	nodeHeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "node_height",
		Help: "The node's chain height in blocks (getblockchaininfo).",
	}, nodeLabels)
	nodeRPCUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: prefix + "node_rpc_up",
		Help: "1 when the ready node answered the operator's last RPC calls, else 0.",
	}, nodeLabels)
)

// The operator's own work.
var (
	rpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    prefix + "rpc_call_duration_seconds",
		Help:    "Duration of the operator's JSON-RPC calls to the nodes, by method and outcome (success or failure).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "outcome"})
	rpcFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "rpc_failures_total",
		Help: "JSON-RPC calls to the nodes that failed, by method and reason.",
	}, []string{"method", "reason"})
	roundDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    prefix + "peer_round_duration_seconds",
		Help:    "Duration of the peer reconciler's rounds (ask every ready node, wire them), by outcome: completed, or cut short by the deadline or the operator's shutdown. Its _count counts the rounds.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30},
	}, []string{"outcome"})
	addnodeChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "addnode_changes_total",
		Help: "addnode entries the operator added to or removed from the nodes, by change: added or removed.",
	}, []string{"change"})
	apiWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "api_writes_total",
		Help: "Write requests the reconcilers sent to the API server, by object kind, subresource (empty for the object itself) and verb.",
	}, []string{"kind", "subresource", "verb"})
)

// statusFamilies and peerFamilies are the per-network families each reconciler sets,
// and deletes when it forgets the network.
var (
	statusFamilies = []*prometheus.GaugeVec{nodesDesired, nodesReady, available, miningInterval, nodeReady}
	peerFamilies   = []*prometheus.GaugeVec{connected, synced, partitioned, bestHeight, tipChanged, nodePeers, nodeHeight, nodeRPCUp}
)

// Collectors are every family of this package, for registration and for tests.
func Collectors() []prometheus.Collector {
	c := []prometheus.Collector{rpcDuration, rpcFailures, roundDuration, addnodeChanges, apiWrites}
	for _, f := range append(statusFamilies[:len(statusFamilies):len(statusFamilies)], peerFamilies...) {
		c = append(c, f)
	}
	return c
}

func init() {
	metrics.Registry.MustRegister(Collectors()...)
}

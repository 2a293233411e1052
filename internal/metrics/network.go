package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Network names a network's series.
type Network struct{ Namespace, Name string }

func (n Network) labels() prometheus.Labels {
	return prometheus.Labels{labelNamespace: n.Namespace, labelNetwork: n.Name}
}

func (n Network) node(ordinal int32) prometheus.Labels {
	l := n.labels()
	l[labelOrdinal] = strconv.Itoa(int(ordinal))
	return l
}

// NodesView is what the status reconciler observed of a network.
type NodesView struct {
	Desired, Ready int32
	Available      bool
	// MiningInterval is spec.mining.interval; 0 when the network has none.
	MiningInterval time.Duration
	// NodeReady holds every pod of the StatefulSet by ordinal: whether it is ready.
	NodeReady map[int32]bool
}

// SetNodes exports what the status reconciler observed, and deletes the series of
// nodes that are gone.
func SetNodes(n Network, v NodesView) {
	l := n.labels()
	nodesDesired.With(l).Set(float64(v.Desired))
	nodesReady.With(l).Set(float64(v.Ready))
	available.With(l).Set(bit(v.Available))
	// Absent, not 0, without an interval: no block is due, and an alert on the
	// tip's age must not take 0 for an interval.
	if v.MiningInterval > 0 {
		miningInterval.With(l).Set(v.MiningInterval.Seconds())
	} else {
		miningInterval.Delete(l)
	}
	for ordinal, ready := range v.NodeReady {
		nodeReady.With(n.node(ordinal)).Set(bit(ready))
	}
	statusNodes.replace(n, keys(v.NodeReady), nodeReady)
}

// ForgetNodes deletes every series SetNodes made for the network: the status
// reconciler forgets a network that is gone.
func ForgetNodes(n Network) {
	statusNodes.forget(n)
	for _, f := range statusFamilies {
		f.DeletePartialMatch(n.labels())
	}
}

// NodeAnswer is what one ready node said in a peer round.
type NodeAnswer struct {
	// Answered: the node answered its last calls; the rest holds only then.
	Answered          bool
	Inbound, Outbound int
	Height            int64
	BestBlockHash     string
}

// PeersView is what a peer round found out about a network.
type PeersView struct {
	Connected, Synced, Partitioned bool
	// Nodes holds the round's ready nodes by ordinal.
	Nodes map[int32]NodeAnswer
}

// SetPeers exports what a peer round found, and deletes the series of nodes that are
// not ready any more.
func SetPeers(n Network, v PeersView) {
	l := n.labels()
	connected.With(l).Set(bit(v.Connected))
	synced.With(l).Set(bit(v.Synced))
	partitioned.With(l).Set(bit(v.Partitioned))
	var best NodeAnswer
	bestOrdinal := int32(-1)
	for ordinal, a := range v.Nodes {
		nodeRPCUp.With(n.node(ordinal)).Set(bit(a.Answered))
		if !a.Answered {
			deleteNode(n, ordinal, nodePeers, nodeHeight)
			continue
		}
		nl := n.node(ordinal)
		nodeHeight.With(nl).Set(float64(a.Height))
		nl["direction"] = "inbound"
		nodePeers.With(nl).Set(float64(a.Inbound))
		nl["direction"] = "outbound"
		nodePeers.With(nl).Set(float64(a.Outbound))
		// The highest node's tip; of nodes at one height, the lowest ordinal's, so
		// that two forks of one height do not count as the tip changing every round.
		if bestOrdinal < 0 || a.Height > best.Height || a.Height == best.Height && ordinal < bestOrdinal {
			best, bestOrdinal = a, ordinal
		}
	}
	peerNodes.replace(n, keys(v.Nodes), nodeRPCUp, nodePeers, nodeHeight)
	if bestOrdinal < 0 {
		return // no node answered: the height and tip are unknown, and stay as they were
	}
	bestHeight.With(l).Set(float64(best.Height))
	if tips.changed(n, best.BestBlockHash) {
		tipChanged.With(l).Set(float64(now().UnixNano()) / 1e9)
	}
}

// ForgetPeers deletes every series SetPeers made for the network: the peer reconciler
// forgets a network that is gone.
func ForgetPeers(n Network) {
	peerNodes.forget(n)
	tips.forget(n)
	for _, f := range peerFamilies {
		f.DeletePartialMatch(n.labels())
	}
}

// now is time.Now, or a test's clock.
var now = time.Now

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func keys[V any](m map[int32]V) map[int32]bool {
	k := make(map[int32]bool, len(m))
	for o := range m {
		k[o] = true
	}
	return k
}

func deleteNode(n Network, ordinal int32, families ...*prometheus.GaugeVec) {
	for _, f := range families {
		f.DeletePartialMatch(n.node(ordinal))
	}
}

// ordinals remembers, per network, the nodes whose series one reconciler exported, so
// that the series of a node that is gone (scaled down, no longer ready) are deleted.
type ordinals struct {
	mu  sync.Mutex
	set map[Network]map[int32]bool
}

var statusNodes, peerNodes ordinals

// replace records now as the network's nodes and deletes, from families, the series
// of the nodes recorded before that are not in now.
func (o *ordinals) replace(n Network, now map[int32]bool, families ...*prometheus.GaugeVec) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ordinal := range o.set[n] {
		if !now[ordinal] {
			deleteNode(n, ordinal, families...)
		}
	}
	if o.set == nil {
		o.set = map[Network]map[int32]bool{}
	}
	o.set[n] = now
}

func (o *ordinals) forget(n Network) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.set, n)
}

// tipMemory remembers each network's best block hash, to tell when it changes.
type tipMemory struct {
	mu   sync.Mutex
	hash map[Network]string
}

var tips tipMemory

func (t *tipMemory) changed(n Network, hash string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hash == nil {
		t.hash = map[Network]string{}
	}
	old, ok := t.hash[n]
	t.hash[n] = hash
	return !ok || old != hash
}

func (t *tipMemory) forget(n Network) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.hash, n)
}

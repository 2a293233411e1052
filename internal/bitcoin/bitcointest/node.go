package bitcointest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"
)

// regtestGenesis is the hash of the regtest genesis block, the tip of a new
// regtest node.
const regtestGenesis = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"

// Node is one bitcoind as its RPC server shows it.
type Node struct {
	network        *Network
	p2p            netip.AddrPort
	user, password string

	// Guarded by network.mu.
	rpcAddr    string
	running    bool
	server     *http.Server
	served     chan struct{}
	added      []string
	nextPeerID int
	// chain is the node's best chain, genesis first.
	chain []string
	// forks are chains the node left for a longer one: its stale tips.
	forks [][]string
	// bans are the addresses the node refuses connections from, until when.
	bans    map[netip.Addr]time.Time
	calls   map[string]int
	latency time.Duration
}

// Start runs a node whose RPC server listens on rpcAddr (an "ip:port"; port 0
// picks a free one, see RPCAddr) and whose P2P address, as other nodes
// addnode it, is p2pAddr.
func (nw *Network) Start(rpcAddr, p2pAddr, user, password string) (*Node, error) {
	p2p, err := netip.ParseAddrPort(p2pAddr)
	if err != nil {
		return nil, fmt.Errorf("failed to parse P2P address: %w", err)
	}
	n := &Node{network: nw, p2p: p2p, user: user, password: password, chain: []string{regtestGenesis}, calls: map[string]int{}}
	nw.mu.Lock()
	if nw.nodes == nil {
		nw.nodes = map[netip.AddrPort]*Node{}
	}
	if nw.nodes[p2p] != nil {
		nw.mu.Unlock()
		return nil, fmt.Errorf("failed to start node: P2P address %s is taken", p2p)
	}
	nw.nodes[p2p] = n
	nw.mu.Unlock()
	if err := n.listen(rpcAddr); err != nil {
		nw.mu.Lock()
		delete(nw.nodes, p2p)
		nw.mu.Unlock()
		return nil, err
	}
	return n, nil
}

func (n *Node) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	server := &http.Server{Handler: n, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	n.network.mu.Lock()
	n.rpcAddr, n.server, n.served, n.running = ln.Addr().String(), server, served, true
	n.network.reconcile()
	n.network.mu.Unlock()
	go func() {
		defer close(served)
		// Serve only ends with http.ErrServerClosed, from Stop.
		_ = server.Serve(ln)
	}()
	return nil
}

// Stop stops the node as a killed bitcoind: RPC calls fail to connect and
// its connections close. It does nothing to a stopped node.
func (n *Node) Stop() {
	nw := n.network
	nw.mu.Lock()
	if !n.running {
		nw.mu.Unlock()
		return
	}
	n.running = false
	server, served := n.server, n.served
	nw.drop(func(l *link) bool { return l.from == n || l.to == n })
	nw.mu.Unlock()
	// Close also ends open keep-alive connections, as the process exit
	// would; its error can only be from closing the listener.
	_ = server.Close()
	<-served
}

// Restart starts a stopped node again on the same RPC address, with an empty
// added-node list and fresh peer ids as a restarted bitcoind has (the node
// does not persist addnode entries). Its chain and call counts are kept.
func (n *Node) Restart() error {
	n.network.mu.Lock()
	if n.running {
		n.network.mu.Unlock()
		return errors.New("failed to restart node: it is running")
	}
	n.added, n.nextPeerID = nil, 0
	addr := n.rpcAddr
	n.network.mu.Unlock()
	return n.listen(addr)
}

// SetLatency makes the node take d to answer each call, as an overloaded bitcoind or
// a hostile tenant's pod would.
func (n *Node) SetLatency(d time.Duration) {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	n.latency = d
}

// RPCAddr returns the "ip:port" the RPC server listens on.
func (n *Node) RPCAddr() string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	return n.rpcAddr
}

// P2PAddr returns the node's P2P "ip:port".
func (n *Node) P2PAddr() string {
	return n.p2p.String()
}

// AddedNodes returns the added-node list in the order entries were added.
func (n *Node) AddedNodes() []string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	return slices.Clone(n.added)
}

// Calls returns how many authenticated requests named method the node has
// served, failed ones included.
func (n *Node) Calls(method string) int {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	return n.calls[method]
}

// AllCalls returns how many authenticated requests the node has served, whatever
// their method, failed and unknown ones included: what a caller costs the node.
func (n *Node) AllCalls() int {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	total := 0
	for _, c := range n.calls {
		total += c
	}
	return total
}

// SetChain gives the node a best chain of height blocks whose tip is hash, the blocks
// below it made up. Unlike mined blocks (GenerateToAddress), it is not relayed until
// the node's links change or a block is mined.
func (n *Node) SetChain(height int, hash string) {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	chain := []string{regtestGenesis}
	for h := 1; h < height; h++ {
		chain = append(chain, blockHash(hash, "", h))
	}
	if height > 0 {
		chain = append(chain, hash)
	}
	if !slices.Contains(chain, n.tip()) {
		n.forks = append(n.forks, n.chain)
	}
	n.chain = chain
}

// BestChain returns the hashes of the node's best chain, genesis first.
func (n *Node) BestChain() []string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	return slices.Clone(n.chain)
}

// Mine mines count blocks paying address on the node, as generatetoaddress does, and
// relays them.
func (n *Node) Mine(count int, address string) []string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	return n.mine(count, address)
}

// height is the best chain's height, tip the hash of its last block.
func (n *Node) height() int { return len(n.chain) - 1 }
func (n *Node) tip() string { return n.chain[len(n.chain)-1] }

// newPeerID numbers connections as CConnman::GetNewNodeId does: from 0,
// never reused while the process lives.
func (n *Node) newPeerID() int {
	id := n.nextPeerID
	n.nextPeerID++
	return id
}

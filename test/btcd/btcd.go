// Package btcd runs real Bitcoin nodes for tests and the demo where bitcoind cannot be
// had: btcd (github.com/btcsuite/btcd), a full node in Go that speaks Bitcoin's P2P
// protocol, in regtest, one per pod IP.
//
// Each Node listens for P2P on <pod IP>:18444 itself, and answers RPC on
// <pod IP>:18443 through a translating proxy (proxy.go) that makes btcd answer like
// Bitcoin Core for the calls the operator makes. btcd's own RPC server stays on
// 127.0.0.1: it refuses --notls on any other address, and TLS would not be Core's
// protocol anyway. The operator therefore dials a pod IP exactly as it would in a
// cluster, and its P2P wiring forms real connections between real nodes.
//
// This is test code: the operator is written for Bitcoin Core, not for btcd.
package btcd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// Regtest ports of Bitcoin Core, which the operator dials on every pod.
const (
	RPCPort = 18443
	P2PPort = 18444
)

// MiningAddress is where generated blocks pay: the regtest pay-to-pubkey-hash of 20
// zero bytes. btcd refuses `generate` without a --miningaddr, and nobody spends these
// coins.
const MiningAddress = "mfWxJ45yp2SFn7UciZyNpvDKrzbhyfKrY8"

// Options describe one node.
type Options struct {
	// Binary is the btcd executable. Empty: Binary() builds or finds it.
	Binary string
	// IP is the pod IP the node listens on; it must be in 127.0.0.0/8 on this machine.
	IP netip.Addr
	// Dir keeps the node's chain and logs across Kill and Restart.
	Dir string
	// User and Password are the RPC credentials, checked by btcd itself.
	User, Password string
}

// Node is a btcd process and its translating proxy.
type Node struct {
	opts  Options
	proxy *proxy

	mu      sync.Mutex
	process *cluster.Process
}

// Binary returns the path of the btcd binary, building it with hack/btcd.sh if
// it is not cached yet.
func Binary() (string, error) {
	root, err := cluster.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "btcd.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/btcd.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Start starts btcd and its proxy. It returns once the proxy listens, before btcd
// answers: until then the proxy answers as a bitcoind in warmup does (see WaitReady).
func Start(opts Options) (*Node, error) {
	if !opts.IP.Is4() || !opts.IP.IsLoopback() {
		// Anything else would have btcd or the operator dial off this machine.
		return nil, fmt.Errorf("btcd: pod IP %s is not in 127.0.0.0/8", opts.IP)
	}
	if opts.Binary == "" {
		var err error
		if opts.Binary, err = Binary(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	n := &Node{opts: opts}
	n.proxy = newProxy()
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	rpc := loopbackAddr(cluster.FreePort())
	// The proxy binds first: if the pod IP's RPC port is taken (an orphaned btcd,
	// another harness with the same IP), fail before btcd starts.
	if err := n.proxy.listen(netip.AddrPortFrom(n.opts.IP, RPCPort).String(), rpc); err != nil {
		return err
	}
	// The credentials go in a file, not on the command line that ps shows.
	conf := filepath.Join(n.opts.Dir, "btcd.conf")
	if err := os.WriteFile(conf, []byte("[Application Options]\nrpcuser="+n.opts.User+"\nrpcpass="+n.opts.Password+"\n"), 0o600); err != nil {
		n.proxy.close()
		return err
	}
	p, err := cluster.StartProcess(n.opts.Dir, "btcd", n.opts.Binary, []string{
		"--configfile=" + conf,
		"--regtest",
		"--datadir=" + filepath.Join(n.opts.Dir, "data"),
		"--logdir=" + filepath.Join(n.opts.Dir, "logs"),
		"--listen=" + n.P2PAddr(),
		"--rpclisten=" + rpc,
		"--notls",
		"--miningaddr=" + MiningAddress,
		// Regtest has no seeds, but never let a default send a DNS query.
		"--nodnsseed",
		// Every outbound connection leaves from 127.0.0.1, so all inbound peers share
		// one host: a ban of one would be a ban of all.
		"--nobanning",
		"--debuglevel=info",
	})
	if err != nil {
		n.proxy.close()
		return err
	}
	n.mu.Lock()
	n.process = p
	n.mu.Unlock()
	return nil
}

// RPCAddr is where the operator dials the node: <pod IP>:18443, the proxy.
func (n *Node) RPCAddr() string { return netip.AddrPortFrom(n.opts.IP, RPCPort).String() }

// P2PAddr is the node's P2P address, as peers addnode it: <pod IP>:18444.
func (n *Node) P2PAddr() string { return netip.AddrPortFrom(n.opts.IP, P2PPort).String() }

// IP is the node's pod IP.
func (n *Node) IP() netip.Addr { return n.opts.IP }

// LogPath is the file that holds btcd's output.
func (n *Node) LogPath() string { return filepath.Join(n.opts.Dir, "btcd.log") }

// Client returns a Bitcoin Core RPC client of the node, through the proxy, as the
// operator sees it. Close it when done.
func (n *Node) Client() *bitcoin.Client {
	return bitcoin.New(n.RPCAddr(), n.opts.User, n.opts.Password)
}

// WaitReady polls btcd until its RPC answers: kwok marks a pod Ready at once, while
// btcd needs a moment to open its chain.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		n.mu.Lock()
		p := n.process
		n.mu.Unlock()
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("btcd on %s exited (%v); its log: %s", n.opts.IP, err, testkit.Tail(n.LogPath(), 20))
		}
		var height int64
		if err := n.call(ctx, "getblockcount", nil, &height); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("btcd on %s did not answer RPC: %w", n.opts.IP, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Generate mines count blocks on this node and returns their hashes. btcd still has
// `generate`, which Bitcoin Core replaced with generatetoaddress.
func (n *Node) Generate(ctx context.Context, count int) ([]string, error) {
	var hashes []string
	err := n.call(ctx, "generate", []any{count}, &hashes)
	return hashes, err
}

// BestBlockHash returns the hash of the node's tip.
func (n *Node) BestBlockHash(ctx context.Context) (string, error) {
	var hash string
	err := n.call(ctx, "getbestblockhash", nil, &hash)
	return hash, err
}

// AddedNodes returns the node's added-node list as Bitcoin Core's getaddednodeinfo
// shows it through the proxy.
func (n *Node) AddedNodes(ctx context.Context) ([]string, error) {
	c := n.Client()
	info, err := c.GetAddedNodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	nodes := make([]string, 0, len(info))
	for _, a := range info {
		nodes = append(nodes, a.AddedNode)
	}
	return nodes, nil
}

// PersistentPeers returns btcd's own list of added peers, those it holds a
// connection to (btcd lists an added node only once connected), without the proxy.
func (n *Node) PersistentPeers(ctx context.Context) ([]string, error) {
	var peers []string
	// Without its dns flag, btcd's getaddednodeinfo is a list of addresses.
	err := n.call(ctx, "getaddednodeinfo", []any{false}, &peers)
	return peers, err
}

// Kill ends btcd at once, as a crashed container, and closes the pod IP's RPC port
// with it.
func (n *Node) Kill() {
	n.mu.Lock()
	p := n.process
	n.mu.Unlock()
	p.Kill()
	n.proxy.close()
}

// Restart starts a killed or stopped node again on the same chain. btcd keeps added
// nodes in memory only, as Bitcoin Core does, and so does the proxy: the restarted
// node has an empty added-node list.
func (n *Node) Restart() error {
	n.mu.Lock()
	p := n.process
	n.mu.Unlock()
	if exited, _ := p.Exited(); !exited {
		return errors.New("btcd: restart of a running node")
	}
	n.proxy.reset()
	return n.start()
}

// Stop stops btcd gracefully, so that its chain is flushed, and closes the proxy.
func (n *Node) Stop() {
	n.mu.Lock()
	p := n.process
	n.mu.Unlock()
	_ = p.Stop(10 * time.Second)
	n.proxy.close()
}

// call runs a btcd RPC method directly, without the proxy's translation.
func (n *Node) call(ctx context.Context, method string, params []any, result any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	return n.proxy.direct(ctx, n.opts.User, n.opts.Password, method, params, result)
}

func loopbackAddr(port int) string {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)).String()
}

//go:build nodes

package btcd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// Named timeouts. btcd opens a fresh regtest chain in about a second and retries
// added nodes within seconds; a btcd at genesis may wait for its 30 s stall timeout
// before it takes blocks from the right peer (proxy.go).
const (
	readyTimeout   = 60 * time.Second
	connectTimeout = 60 * time.Second
	syncTimeout    = 2 * time.Minute
	interval       = 200 * time.Millisecond
)

// startNodes starts count btcd on distinct random loopback IPs and waits until they
// answer.
func startNodes(t *testing.T, count int) []*Node {
	t.Helper()
	g := NewWithT(t)
	bin, err := Binary()
	g.Expect(err).NotTo(HaveOccurred())
	dir := t.TempDir()
	nodes := make([]*Node, count)
	for i, ip := range podIPs(t, count) {
		n, err := Start(Options{Binary: bin, IP: ip, Dir: filepath.Join(dir, fmt.Sprint(i)), User: testUser, Password: testPassword})
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(n.Stop)
		nodes[i] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, n := range nodes {
		g.Expect(n.WaitReady(ctx)).To(Succeed())
	}
	return nodes
}

// TestNetwork wires three btcd as the operator does, with the operator's Bitcoin Core
// client through the proxies, and checks what the real-node suite relies on.
func TestNetwork(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	start := time.Now()
	nodes := startNodes(t, 3)
	t.Logf("3 btcd answering after %.1f s on %s, %s, %s", time.Since(start).Seconds(), nodes[0].IP(), nodes[1].IP(), nodes[2].IP())
	clients := make([]*bitcoin.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = n.Client()
	}

	// As the operator does: add, then onetry so that Core dials at once.
	for i, c := range clients {
		for j, peer := range nodes {
			if i != j {
				g.Expect(c.AddNode(ctx, peer.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
				g.Expect(c.AddNode(ctx, peer.P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
			}
		}
	}
	// Core's -23, which the client takes as success; btcd's own -8 would fail it.
	g.Expect(clients[0].AddNode(ctx, nodes[1].P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())

	start = time.Now()
	g.Eventually(func(g Gomega) {
		for i, c := range clients {
			peers, err := c.GetPeerInfo(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			added, err := c.GetAddedNodeInfo(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(added).To(HaveLen(2))
			for j, peer := range nodes {
				if i == j {
					continue
				}
				g.Expect(peers).To(ContainElement(And(
					HaveField("Addr", peer.P2PAddr()),
					HaveField("Inbound", false),
					HaveField("ConnectionType", bitcoin.ConnectionTypeManual))), "node %d's peers", i)
				g.Expect(added).To(ContainElement(And(
					HaveField("AddedNode", peer.P2PAddr()),
					HaveField("Connected", true),
					HaveField("Addresses", ConsistOf(HaveField("Connected", "outbound"))))))
			}
			// Each also holds the others' connections to it, inbound.
			g.Expect(peers).To(ContainElements(
				HaveField("ConnectionType", bitcoin.ConnectionTypeInbound),
				HaveField("ConnectionType", bitcoin.ConnectionTypeInbound)))
			info, err := c.GetNetworkInfo(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info.Connections).To(Equal(len(peers)))
			g.Expect(info.ConnectionsOut).To(Equal(2))
			g.Expect(info.NetworkActive).To(BeTrue())
		}
	}, connectTimeout, interval).Should(Succeed())
	t.Logf("full mesh of P2P connections after %.1f s", time.Since(start).Seconds())

	// Core's remove drops the entry and keeps the connection; adding it again must
	// not open a second connection to the same node, which btcd would if told twice.
	g.Expect(clients[0].AddNode(ctx, nodes[1].P2PAddr(), bitcoin.AddNodeRemove)).To(Succeed())
	g.Expect(nodes[0].AddedNodes(ctx)).To(ConsistOf(nodes[2].P2PAddr()))
	g.Expect(clients[0].AddNode(ctx, nodes[1].P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(nodes[0].AddedNodes(ctx)).To(ConsistOf(nodes[2].P2PAddr(), nodes[1].P2PAddr()))
	g.Expect(clients[0].AddNode(ctx, nodes[1].P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	g.Consistently(func(g Gomega) {
		for _, c := range clients {
			info, err := c.GetNetworkInfo(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info.ConnectionsOut).To(Equal(2))
		}
	}, 3*time.Second, interval).Should(Succeed())

	for _, c := range clients {
		info, err := c.GetBlockchainInfo(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(info.Chain).To(Equal("regtest"))
		// The regtest genesis block is from 2011: Core is in initial block download.
		g.Expect(info.InitialBlockDownload).To(BeTrue())
	}
	hashes, err := nodes[0].Generate(ctx, 5)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(HaveLen(5))
	start = time.Now()
	g.Eventually(func(g Gomega) {
		for i, n := range nodes {
			hash, err := n.BestBlockHash(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(hash).To(Equal(hashes[4]), "node %d's tip", i)
			info, err := clients[i].GetBlockchainInfo(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info).To(And(HaveField("Blocks", BeEquivalentTo(5)), HaveField("BestBlockHash", hashes[4]),
				HaveField("InitialBlockDownload", false)))
		}
	}, syncTimeout, interval).Should(Succeed())
	t.Logf("5 blocks mined on node 0 reached every node after %.1f s", time.Since(start).Seconds())

	// A killed node refuses RPC, as a dead bitcoind's pod IP does.
	nodes[2].Kill()
	// The first call may meet the kept-alive connection's close instead.
	g.Eventually(func() error {
		_, err := clients[2].GetBlockchainInfo(ctx)
		return err
	}, connectTimeout, interval).Should(MatchError(ContainSubstring("connection refused")))
	start = time.Now()
	g.Expect(nodes[2].Restart()).To(Succeed())
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	g.Expect(nodes[2].WaitReady(readyCtx)).To(Succeed())
	t.Logf("node 2 answering again %.1f s after its restart", time.Since(start).Seconds())
	g.Expect(nodes[2].AddedNodes(ctx)).To(BeEmpty())
	g.Expect(nodes[2].PersistentPeers(ctx)).To(BeEmpty())
	// Its peers keep it as an added node and dial it again. btcd flushes its chain
	// lazily, so a killed one may come back behind, even at genesis: it catches up
	// from those peers.
	g.Eventually(func(g Gomega) {
		peers, err := clients[2].GetPeerInfo(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(peers).To(ConsistOf(
			HaveField("ConnectionType", bitcoin.ConnectionTypeInbound),
			HaveField("ConnectionType", bitcoin.ConnectionTypeInbound)))
		g.Expect(nodes[2].BestBlockHash(ctx)).To(Equal(hashes[4]))
	}, syncTimeout, interval).Should(Succeed())
	t.Logf("node 2 reconnected and at the tip %.1f s after its restart", time.Since(start).Seconds())
	g.Expect(nodes[2].AddedNodes(ctx)).To(BeEmpty())
}

// TestCoreSemantics checks the translations that the network test does not reach.
func TestCoreSemantics(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	nodes := startNodes(t, 1)
	n := nodes[0]
	c := n.Client()

	// Core lists an added node at once, connected or not; btcd only once connected.
	// Nothing listens on the harness node's own RPC port for P2P.
	absent := n.IP().Next().String() + ":18444"
	g.Expect(c.AddNode(ctx, absent, bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(c.GetAddedNodeInfo(ctx)).To(ConsistOf(And(
		HaveField("AddedNode", absent), HaveField("Connected", false), HaveField("Addresses", BeEmpty()))))
	g.Expect(rawCall(t, n, `{"jsonrpc":"1.0","id":1,"method":"addnode","params":["`+absent+`","add"]}`)).
		To(HaveCode(http.StatusInternalServerError, -23))
	g.Expect(c.AddNode(ctx, absent, bitcoin.AddNodeRemove)).To(Succeed())
	g.Expect(c.GetAddedNodeInfo(ctx)).To(BeEmpty())
	g.Expect(rawCall(t, n, `{"jsonrpc":"1.0","id":1,"method":"addnode","params":["`+absent+`","remove"]}`)).
		To(HaveCode(http.StatusInternalServerError, -24))
	g.Expect(rawCall(t, n, `{"jsonrpc":"1.0","id":1,"method":"getaddednodeinfo","params":["`+absent+`"]}`)).
		To(HaveCode(http.StatusInternalServerError, -24))
	g.Expect(rawCall(t, n, `{"jsonrpc":"1.0","id":1,"method":"disconnectnode","params":["`+absent+`"]}`)).
		To(HaveCode(http.StatusInternalServerError, -29))
	g.Expect(c.DisconnectNode(ctx, absent)).To(Succeed())
	// No name lookups from this machine.
	g.Expect(rawCall(t, n, `{"jsonrpc":"1.0","id":1,"method":"addnode","params":["node-1.example:18444","add"]}`)).
		To(HaveCode(http.StatusInternalServerError, -8))
	// Core refuses a numeric jsonrpc; btcd would close the connection.
	g.Expect(rawCall(t, n, `{"jsonrpc":1,"id":1,"method":"getpeerinfo","params":[]}`)).
		To(HaveCode(http.StatusBadRequest, -32600))

	wrong := bitcoin.New(n.RPCAddr(), testUser, "wrong")
	_, err := wrong.GetPeerInfo(ctx)
	g.Expect(errors.Is(err, bitcoin.ErrUnauthorized)).To(BeTrue(), "%v", err)
}

package bitcointest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
)

const (
	user     = "rpc-user"
	password = "rpc-password"
)

func start(t *testing.T, network *bitcointest.Network, ip string) *bitcointest.Node {
	t.Helper()
	node, err := network.Start(ip+":0", ip+":18444", user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	return node
}

func client(t *testing.T, node *bitcointest.Node) *bitcoin.Client {
	t.Helper()
	c := bitcoin.New(node.RPCAddr(), user, password)
	return c
}

// reply is a raw legacy JSON-RPC reply.
type reply struct {
	status int
	header http.Header
	body   []byte
	fields map[string]json.RawMessage
}

// post sends body to node's RPC server with the given credentials, bypassing
// the client so that the wire format shows.
func post(t *testing.T, node *bitcointest.Node, method, body string, auth bool) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+node.RPCAddr()+"/", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(user, password)
	}
	// A zero Transport has no proxy.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(r.body, &r.fields)
	return r
}

// rpcCode calls method and returns the error code of the reply, 0 for none.
func rpcCode(t *testing.T, node *bitcointest.Node, method string, params ...any) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	var rpcErr struct{ Code int }
	_ = json.Unmarshal(post(t, node, http.MethodPost, string(body), true).fields["error"], &rpcErr)
	return rpcErr.Code
}

func TestWireFormat(t *testing.T) {
	var network bitcointest.Network
	node := start(t, &network, "127.251.0.1")
	for name, tc := range map[string]struct {
		method, body string
		auth         bool
		status       int
		error        string
	}{
		"no credentials":  {http.MethodPost, `{}`, false, http.StatusUnauthorized, ""},
		"GET":             {http.MethodGet, ``, true, http.StatusMethodNotAllowed, ""},
		"success":         {http.MethodPost, `{"jsonrpc":"1.0","id":7,"method":"getnetworkinfo","params":[]}`, true, http.StatusOK, "null"},
		"no jsonrpc":      {http.MethodPost, `{"id":7,"method":"getnetworkinfo"}`, true, http.StatusOK, "null"},
		"unknown method":  {http.MethodPost, `{"jsonrpc":"1.0","id":7,"method":"getbalance","params":[]}`, true, http.StatusNotFound, `{"code":-32601,"message":"Method not found"}`},
		"numeric jsonrpc": {http.MethodPost, `{"jsonrpc":1.0,"id":7,"method":"getnetworkinfo","params":[]}`, true, http.StatusBadRequest, `"code":-32600`},
		"not JSON":        {http.MethodPost, `getnetworkinfo`, true, http.StatusInternalServerError, `"code":-32700`},
		"wrong arity":     {http.MethodPost, `{"jsonrpc":"1.0","id":7,"method":"getpeerinfo","params":[1]}`, true, http.StatusInternalServerError, `"code":-1`},
		"wrong type":      {http.MethodPost, `{"jsonrpc":"1.0","id":7,"method":"addnode","params":[1,"add"]}`, true, http.StatusInternalServerError, `"code":-3`},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := post(t, node, tc.method, tc.body, tc.auth)
			g.Expect(r.status).To(Equal(tc.status))
			switch tc.status {
			case http.StatusUnauthorized:
				g.Expect(r.body).To(BeEmpty())
				g.Expect(r.header.Get("WWW-Authenticate")).To(Equal(`Basic realm="jsonrpc"`))
			case http.StatusMethodNotAllowed:
				g.Expect(string(r.body)).To(Equal("JSONRPC server handles only POST requests"))
			default:
				g.Expect(r.fields).To(HaveKey("result"))
				g.Expect(string(r.fields["error"])).To(ContainSubstring(tc.error))
				g.Expect(r.body).To(HaveSuffix("\n"))
			}
			if tc.status == http.StatusOK {
				g.Expect(string(r.fields["id"])).To(Equal("7"))
			}
		})
	}
}

func TestAddNodeKeepsAList(t *testing.T) {
	g := NewWithT(t)
	var network bitcointest.Network
	node := start(t, &network, "127.251.1.1")

	g.Expect(rpcCode(t, node, "addnode", "127.251.1.2:18444", "add")).To(BeZero())
	g.Expect(rpcCode(t, node, "addnode", "127.251.1.2:18444", "add")).To(Equal(bitcoin.CodeNodeAlreadyAdded))
	g.Expect(rpcCode(t, node, "addnode", "[::1]:18444", "add")).To(BeZero())
	// CConnman::AddNode also compares the parsed address.
	g.Expect(rpcCode(t, node, "addnode", "[0::1]:18444", "add")).To(Equal(bitcoin.CodeNodeAlreadyAdded))
	g.Expect(rpcCode(t, node, "addnode", "127.251.1.3:18444", "onetry")).To(BeZero())
	g.Expect(node.AddedNodes()).To(Equal([]string{"127.251.1.2:18444", "[::1]:18444"}))

	g.Expect(rpcCode(t, node, "getaddednodeinfo", "127.251.1.2:18444")).To(BeZero())
	g.Expect(rpcCode(t, node, "getaddednodeinfo", "127.251.1.3:18444")).To(Equal(bitcoin.CodeNodeNotAdded))
	g.Expect(rpcCode(t, node, "addnode", "127.251.1.2:18444", "remove")).To(BeZero())
	g.Expect(rpcCode(t, node, "addnode", "127.251.1.2:18444", "remove")).To(Equal(bitcoin.CodeNodeNotAdded))
	g.Expect(rpcCode(t, node, "addnode", "127.251.1.2:18444", "connect")).To(Equal(bitcoin.CodeMiscError))
	g.Expect(node.AddedNodes()).To(Equal([]string{"[::1]:18444"}))
	g.Expect(node.Calls("addnode")).To(Equal(8))
	g.Expect(node.Calls("getaddednodeinfo")).To(Equal(2))
	g.Expect(rpcCode(t, node, "nosuchmethod")).To(Equal(-32601))
	g.Expect(node.AllCalls()).To(Equal(11), "every method counts, unknown ones too")
}

func TestConnectionsNeedARunningNodeOfTheSameNetwork(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network, other bitcointest.Network
	a := start(t, &network, "127.251.2.1")
	start(t, &other, "127.251.2.2")
	c := client(t, a)

	g.Expect(c.AddNode(ctx, "127.251.2.2:18444", bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(c.AddNode(ctx, "127.251.2.3:18444", bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(c.GetAddedNodeInfo(ctx)).To(HaveEach(And(HaveField("Connected", false), HaveField("Addresses", BeEmpty()))))

	// Core retries unconnected added nodes, so a node that comes up is reached.
	start(t, &network, "127.251.2.3")
	g.Expect(c.GetAddedNodeInfo(ctx)).To(Equal([]bitcoin.AddedNode{
		{AddedNode: "127.251.2.2:18444", Addresses: []bitcoin.AddedNodeAddress{}},
		{AddedNode: "127.251.2.3:18444", Connected: true, Addresses: []bitcoin.AddedNodeAddress{{Address: "127.251.2.3:18444", Connected: "outbound"}}},
	}))
}

// startMany starts count nodes on 127.251.<subnet>.1, .2, ...
func startMany(t *testing.T, network *bitcointest.Network, subnet, count int) []*bitcointest.Node {
	nodes := make([]*bitcointest.Node, count)
	for i := range nodes {
		nodes[i] = start(t, network, fmt.Sprintf("127.251.%d.%d", subnet, i+1))
	}
	return nodes
}

func TestAtMostEightAddnodeConnections(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	nodes := startMany(t, &network, 3, 11)
	a, c := nodes[0], client(t, nodes[0])

	for _, peer := range nodes[1:10] {
		g.Expect(c.AddNode(ctx, peer.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	}
	info, err := c.GetAddedNodeInfo(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info).To(HaveLen(9))
	g.Expect(info[:8]).To(HaveEach(HaveField("Connected", true)))
	g.Expect(info[8].Connected).To(BeFalse())

	// onetry connections hold no addnode slot.
	g.Expect(c.AddNode(ctx, nodes[10].P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	g.Expect(c.GetNetworkInfo(ctx)).To(HaveField("ConnectionsOut", 9))

	// A slot freed by a peer going away goes to the waiting entry.
	nodes[1].Stop()
	g.Expect(network.Linked(a.P2PAddr(), nodes[9].P2PAddr())).To(BeTrue())
	g.Expect(c.GetNetworkInfo(ctx)).To(HaveField("ConnectionsOut", 9))
}

func TestRemoveKeepsTheConnectionAndItsSlot(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	nodes := startMany(t, &network, 4, 10)
	a, c := nodes[0], client(t, nodes[0])
	for _, peer := range nodes[1:9] {
		g.Expect(c.AddNode(ctx, peer.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	}

	g.Expect(c.AddNode(ctx, nodes[1].P2PAddr(), bitcoin.AddNodeRemove)).To(Succeed())
	g.Expect(c.AddNode(ctx, nodes[9].P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(network.Linked(a.P2PAddr(), nodes[1].P2PAddr())).To(BeTrue())
	g.Expect(network.Linked(a.P2PAddr(), nodes[9].P2PAddr())).To(BeFalse())

	g.Expect(c.DisconnectNode(ctx, nodes[1].P2PAddr())).To(Succeed())
	g.Expect(network.Linked(a.P2PAddr(), nodes[1].P2PAddr())).To(BeFalse())
	g.Expect(network.Linked(a.P2PAddr(), nodes[9].P2PAddr())).To(BeTrue())
	g.Expect(rpcCode(t, a, "disconnectnode", nodes[1].P2PAddr())).To(Equal(bitcoin.CodeNodeNotConnected))
}

func TestMutualAddsMakeTwoConnections(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b := start(t, &network, "127.251.5.1"), start(t, &network, "127.251.5.2")
	ca, cb := client(t, a), client(t, b)

	g.Expect(ca.AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	// An inbound connection shows an ephemeral port, which never matches an
	// added ip:port: b dials a too, as Core does.
	g.Expect(cb.AddNode(ctx, a.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())

	for _, c := range []*bitcoin.Client{ca, cb} {
		g.Expect(c.GetAddedNodeInfo(ctx)).To(ConsistOf(HaveField("Connected", true)))
		g.Expect(c.GetNetworkInfo(ctx)).To(And(HaveField("ConnectionsIn", 1), HaveField("ConnectionsOut", 1)))
	}
	peers, err := ca.GetPeerInfo(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(peers).To(HaveLen(2))
	g.Expect(peers[0]).To(Equal(bitcoin.Peer{ID: 0, Addr: b.P2PAddr(), ConnectionType: bitcoin.ConnectionTypeManual}))
	g.Expect(peers[1].ID).To(BeEquivalentTo(1))
	g.Expect(peers[1].Inbound).To(BeTrue())
	g.Expect(peers[1].Addr).To(MatchRegexp(`^127\.251\.5\.2:\d+$`))
	g.Expect(peers[1].Addr).NotTo(Equal(b.P2PAddr()))
}

func TestStopAndRestart(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b, c := start(t, &network, "127.251.6.1"), start(t, &network, "127.251.6.2"), start(t, &network, "127.251.6.3")
	ca, cb := client(t, a), client(t, b)
	g.Expect(ca.AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(cb.AddNode(ctx, c.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())

	b.Stop()
	b.Stop()
	_, err := client(t, b).GetNetworkInfo(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
	g.Expect(network.Linked(a.P2PAddr(), b.P2PAddr())).To(BeFalse())
	g.Expect(network.Linked(b.P2PAddr(), c.P2PAddr())).To(BeFalse())
	g.Expect(ca.GetAddedNodeInfo(ctx)).To(ConsistOf(HaveField("Connected", false)))

	g.Expect(b.Restart()).To(Succeed())
	g.Expect(b.Restart()).NotTo(Succeed())
	g.Expect(b.AddedNodes()).To(BeEmpty())
	g.Expect(network.Linked(a.P2PAddr(), b.P2PAddr())).To(BeTrue())
	g.Expect(network.Linked(b.P2PAddr(), c.P2PAddr())).To(BeFalse())
	peers, err := client(t, b).GetPeerInfo(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(peers).To(ConsistOf(And(HaveField("ID", BeEquivalentTo(0)), HaveField("Inbound", true))))
	g.Expect(b.Calls("addnode")).To(Equal(1))
}

func TestStartRejectsBadOrTakenP2PAddresses(t *testing.T) {
	g := NewWithT(t)
	var network bitcointest.Network
	start(t, &network, "127.251.7.1")
	_, err := network.Start("127.251.7.2:0", "127.251.7.1:18444", user, password)
	g.Expect(err).To(MatchError(ContainSubstring("is taken")))
	_, err = network.Start("127.251.7.2:0", "bitcoind:18444", user, password)
	g.Expect(err).To(HaveOccurred())
}

func TestChainAndSyncedBlocks(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b := start(t, &network, "127.251.8.1"), start(t, &network, "127.251.8.2")
	ca := client(t, a)
	g.Expect(ca.GetBlockchainInfo(ctx)).To(And(HaveField("Blocks", BeZero()), HaveField("InitialBlockDownload", true)))

	a.SetChain(120, "aa")
	b.SetChain(101, "bb")
	g.Expect(ca.GetBlockchainInfo(ctx)).To(Equal(bitcoin.BlockchainInfo{Chain: "regtest", Blocks: 120, Headers: 120, BestBlockHash: "aa"}))
	g.Expect(ca.AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	// Connected, b takes a's longer chain, as Core's headers sync would.
	g.Expect(ca.GetPeerInfo(ctx)).To(ConsistOf(HaveField("SyncedBlocks", BeEquivalentTo(120))))
	g.Expect(client(t, b).GetBestBlockHash(ctx)).To(Equal("aa"))
}

func TestMiningRelaysAndGetBlockHash(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b := start(t, &network, "127.251.10.1"), start(t, &network, "127.251.10.2")
	ca, cb := client(t, a), client(t, b)
	const addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

	_, err := ca.GenerateToAddress(ctx, 1, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
	g.Expect(err).To(MatchError(ContainSubstring("-5: Error: Invalid address")), "a mainnet address")

	g.Expect(ca.AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	hashes, err := ca.GenerateToAddress(ctx, 3, addr)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(HaveLen(3))
	g.Expect(cb.GetBestBlockHash(ctx)).To(Equal(hashes[2]), "relayed to the linked node")
	g.Expect(cb.GetBlockHash(ctx, 2)).To(Equal(hashes[1]))
	g.Expect(cb.GetBlockHash(ctx, 0)).To(Equal("0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"))
	_, err = cb.GetBlockHash(ctx, 4)
	g.Expect(err).To(MatchError(ContainSubstring("-8: Block height out of range")))
	paid, ok := network.CoinbaseAddress(hashes[0])
	g.Expect(ok).To(BeTrue())
	g.Expect(paid).To(Equal(addr))
}

// Two nodes that mined apart meet: the shorter side takes the longer chain, and the
// blocks it had above the fork are no longer on its best chain.
func TestReorgWhenSidesMeet(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b := start(t, &network, "127.251.11.1"), start(t, &network, "127.251.11.2")
	const addr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	shared := a.Mine(2, addr)
	g.Expect(client(t, a).AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	g.Expect(b.BestChain()).To(HaveLen(3))
	g.Expect(client(t, a).DisconnectNode(ctx, b.P2PAddr())).To(Succeed())

	a.Mine(3, addr)
	replaced := b.Mine(1, addr)
	g.Expect(client(t, b).GetBestBlockHash(ctx)).To(Equal(replaced[0]), "apart, b keeps its own")
	g.Expect(client(t, b).AddNode(ctx, a.P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	g.Expect(b.BestChain()).To(Equal(a.BestChain()))
	g.Expect(b.BestChain()).To(HaveLen(6))
	g.Expect(b.BestChain()[2]).To(Equal(shared[1]), "the fork point stays")
	g.Expect(b.BestChain()).NotTo(ContainElement(replaced[0]))
	g.Expect(client(t, b).GetChainTips(ctx)).To(Equal([]bitcoin.ChainTip{
		{Height: 5, Hash: a.BestChain()[5], BranchLen: 0, Status: "active"},
		{Height: 3, Hash: replaced[0], BranchLen: 1, Status: "valid-fork"},
	}), "b knows the tip it left, one block off the fork point")

	// Equal chains never reorg: each keeps the one it saw first.
	c, d := start(t, &network, "127.251.11.3"), start(t, &network, "127.251.11.4")
	c.Mine(1, addr)
	mine := d.Mine(1, addr)
	g.Expect(client(t, d).AddNode(ctx, c.P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	g.Expect(client(t, d).GetBestBlockHash(ctx)).To(Equal(mine[0]))
}

func TestConnected(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	g.Expect(network.Connected()).To(BeTrue())
	a, b, c := start(t, &network, "127.251.9.1"), start(t, &network, "127.251.9.2"), start(t, &network, "127.251.9.3")
	g.Expect(client(t, a).AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(network.Connected()).To(BeFalse())
	g.Expect(client(t, c).AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(network.Connected()).To(BeTrue())
}

// Bans on both sides keep two nodes apart: the banned side's inbound connection is
// refused, an open one is closed, and the ban ends or is lifted.
func TestBans(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b := start(t, &network, "127.251.12.1"), start(t, &network, "127.251.12.2")
	ca, cb := client(t, a), client(t, b)
	g.Expect(ca.AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeAdd)).To(Succeed())
	g.Expect(network.Linked(a.P2PAddr(), b.P2PAddr())).To(BeTrue())

	g.Expect(cb.SetBan(ctx, "127.251.12.1", false, 60)).To(Succeed())
	g.Expect(network.Linked(a.P2PAddr(), b.P2PAddr())).To(BeFalse(), "setban add disconnects")
	g.Expect(cb.SetBan(ctx, "127.251.12.1", false, 60)).To(MatchError(ContainSubstring("-23: Error: IP/Subnet already banned")))
	bans, err := cb.ListBanned(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bans).To(ConsistOf(And(HaveField("Address", "127.251.12.1/32"), HaveField("TimeRemaining", BeNumerically("~", 60, 1)))))
	g.Expect(ca.AddNode(ctx, b.P2PAddr(), bitcoin.AddNodeOneTry)).To(Succeed())
	g.Expect(network.Linked(a.P2PAddr(), b.P2PAddr())).To(BeFalse(), "b refuses a's inbound connection")

	g.Expect(cb.SetBan(ctx, "127.251.12.1", true, 0)).To(Succeed())
	g.Expect(network.Linked(a.P2PAddr(), b.P2PAddr())).To(BeTrue(), "a's added entry connects again")
	g.Expect(cb.SetBan(ctx, "127.251.12.1", true, 0)).To(MatchError(ContainSubstring("-30: Error: Unban failed")))
	g.Expect(cb.SetBan(ctx, "not-an-ip", false, 1)).To(MatchError(ContainSubstring("-30: Error: Invalid IP/Subnet")))

	g.Expect(cb.SetBan(ctx, "127.251.12.1", false, 1)).To(Succeed())
	g.Expect(b.Bans()).To(HaveLen(1))
	g.Eventually(b.Bans, 3*time.Second, 50*time.Millisecond).Should(BeEmpty(), "a ban ends")
}

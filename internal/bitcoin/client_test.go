package bitcoin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
)

// Distinctive credentials, so that a leak into an error text shows.
const (
	testUser     = "rpc-user-7f3a9c"
	testPassword = "rpc-pass-91c2e4"
)

// startNode starts a node of network whose RPC server and P2P address are on
// the loopback IP ip.
func startNode(t *testing.T, network *bitcointest.Network, ip string) *bitcointest.Node {
	t.Helper()
	node, err := network.Start(ip+":0", ip+":18444", testUser, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	return node
}

func clientOf(t *testing.T, node *bitcointest.Node) *Client {
	t.Helper()
	c := New(node.RPCAddr(), testUser, testPassword)
	return c
}

// serve starts an HTTP server on 127.0.0.1 and returns a client of it.
func serve(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	c := New(server.Listener.Addr().String(), testUser, testPassword)
	return c
}

func expectNoCredentials(g *WithT, err error) {
	g.Expect(err.Error()).NotTo(Or(ContainSubstring(testUser), ContainSubstring(testPassword)))
}

func TestRequestIsLegacyJSONRPCWithBasicAuth(t *testing.T) {
	g := NewWithT(t)
	var got *http.Request
	var body map[string]any
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		g.Expect(json.NewDecoder(r.Body).Decode(&body)).To(Succeed())
		_, _ = io.WriteString(w, `{"result":[],"error":null,"id":1}`)
	})

	g.Expect(c.GetAddedNodeInfo(t.Context())).To(BeEmpty())
	g.Expect(got.Method).To(Equal(http.MethodPost))
	g.Expect(got.URL.Path).To(Equal("/"))
	user, password, ok := got.BasicAuth()
	g.Expect([]any{user, password, ok}).To(Equal([]any{testUser, testPassword, true}))
	g.Expect(body).To(HaveKeyWithValue("jsonrpc", "1.0"))
	g.Expect(body).To(HaveKeyWithValue("method", "getaddednodeinfo"))
	g.Expect(body).To(HaveKeyWithValue("params", BeEmpty()))
	g.Expect(body).To(HaveKeyWithValue("id", BeNumerically(">", 0)))
}

func TestMethodsAgainstTheDouble(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a, b := startNode(t, &network, "127.250.0.1"), startNode(t, &network, "127.250.0.2")
	ca, cb := clientOf(t, a), clientOf(t, b)
	b.SetChain(101, "hash101")

	g.Expect(ca.AddNode(ctx, b.P2PAddr(), AddNodeAdd)).To(Succeed())

	g.Expect(ca.GetAddedNodeInfo(ctx)).To(Equal([]AddedNode{{
		AddedNode: "127.250.0.2:18444", Connected: true,
		Addresses: []AddedNodeAddress{{Address: "127.250.0.2:18444", Connected: "outbound"}},
	}}))
	// Connected, a syncs b's chain: they share 101 blocks.
	g.Expect(ca.GetPeerInfo(ctx)).To(Equal([]Peer{{ID: 0, Addr: "127.250.0.2:18444", ConnectionType: ConnectionTypeManual, SyncedBlocks: 101}}))
	inbound, err := cb.GetPeerInfo(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(inbound).To(ConsistOf(And(
		HaveField("Inbound", true),
		HaveField("ConnectionType", ConnectionTypeInbound),
		HaveField("Addr", HavePrefix("127.250.0.1:")),
	)))
	g.Expect(ca.GetNetworkInfo(ctx)).To(Equal(NetworkInfo{
		Version: 280000, Subversion: "/Satoshi:28.0.0/", Connections: 1, ConnectionsOut: 1, NetworkActive: true,
	}))
	g.Expect(cb.GetNetworkInfo(ctx)).To(HaveField("ConnectionsIn", 1))
	g.Expect(cb.GetBlockchainInfo(ctx)).To(Equal(BlockchainInfo{
		Chain: "regtest", Blocks: 101, Headers: 101, BestBlockHash: "hash101",
	}))

	g.Expect(ca.AddNode(ctx, b.P2PAddr(), AddNodeRemove)).To(Succeed())
	g.Expect(ca.DisconnectNode(ctx, b.P2PAddr())).To(Succeed())
	g.Expect(ca.GetPeerInfo(ctx)).To(BeEmpty())
	g.Expect(ca.AddNode(ctx, b.P2PAddr(), AddNodeOneTry)).To(Succeed())
	g.Expect(ca.GetPeerInfo(ctx)).To(HaveLen(1))
}

func TestIdempotentCasesSucceed(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	var network bitcointest.Network
	a := startNode(t, &network, "127.250.1.1")
	c := clientOf(t, a)

	for _, cmd := range []AddNodeCommand{AddNodeAdd, AddNodeAdd, AddNodeRemove, AddNodeRemove} {
		g.Expect(c.AddNode(ctx, "127.250.1.2:18444", cmd)).To(Succeed(), string(cmd))
	}
	g.Expect(c.DisconnectNode(ctx, "127.250.1.2:18444")).To(Succeed())
	g.Expect(a.Calls("addnode")).To(Equal(4))
	g.Expect(a.AddedNodes()).To(BeEmpty())
}

func TestOtherRPCErrorsAreTyped(t *testing.T) {
	g := NewWithT(t)
	var network bitcointest.Network
	c := clientOf(t, startNode(t, &network, "127.250.2.1"))

	err := c.AddNode(t.Context(), "127.250.2.2:18444", "connect")
	var rpcErr *RPCError
	g.Expect(errors.As(err, &rpcErr)).To(BeTrue())
	g.Expect(rpcErr.Code).To(Equal(CodeMiscError))
	g.Expect(err).To(MatchError(HavePrefix("failed to call addnode on 127.250.2.1:")))
}

// An idempotent code only counts for its own command.
func TestNotAddedOnAddIsAnError(t *testing.T) {
	g := NewWithT(t)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"result":null,"error":{"code":-24,"message":"Error: Node has not been added."},"id":1}`)
	})
	err := c.AddNode(t.Context(), "127.250.3.2:18444", AddNodeAdd)
	var rpcErr *RPCError
	g.Expect(errors.As(err, &rpcErr)).To(BeTrue())
	g.Expect(rpcErr.Code).To(Equal(CodeNodeNotAdded))
}

func TestUnknownMethodIsTyped(t *testing.T) {
	g := NewWithT(t)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":1}`)
	})
	_, err := c.GetPeerInfo(t.Context())
	var rpcErr *RPCError
	g.Expect(errors.As(err, &rpcErr)).To(BeTrue())
	g.Expect(rpcErr.Code).To(Equal(CodeMethodNotFound))
}

func TestWrongCredentialsAreUnauthorized(t *testing.T) {
	g := NewWithT(t)
	var network bitcointest.Network
	node := startNode(t, &network, "127.250.4.1")
	c := New(node.RPCAddr(), testUser, "wrong-"+testPassword)

	_, err := c.GetNetworkInfo(t.Context())
	g.Expect(err).To(MatchError(ErrUnauthorized))
	g.Expect(err).To(MatchError(ContainSubstring("check the RPC user and password")))
	expectNoCredentials(g, err)
}

func TestClosedConnection(t *testing.T) {
	g := NewWithT(t)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	_, err := c.GetPeerInfo(t.Context())
	g.Expect(err).To(MatchError(ErrConnectionClosed))
	expectNoCredentials(g, err)
}

func TestIdleConnectionsAreBoundedForAllNodesTogether(t *testing.T) {
	g := NewWithT(t)
	var mu sync.Mutex
	open := map[net.Conn]http.ConnState{} // the servers' connections
	track := func(c net.Conn, state http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if state == http.StateClosed {
			delete(open, c)
		} else {
			open[c] = state
		}
	}
	idle := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, state := range open {
			if state == http.StateIdle {
				n++
			}
		}
		return n
	}
	nodes := 2 * maxIdleConns
	for range nodes {
		server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"result":[],"error":null,"id":1}`)
		}))
		server.Config.ConnState = track
		server.Start()
		t.Cleanup(server.Close)
		c := New(server.Listener.Addr().String(), testUser, testPassword)
		g.Expect(c.GetPeerInfo(t.Context())).Error().NotTo(HaveOccurred())
	}
	g.Eventually(idle).Should(BeNumerically("<=", maxIdleConns),
		"%d nodes called one after the other keep at most %d idle connections", nodes, maxIdleConns)
}

// closesSecondCall serves calls on kept-alive connections but reads the second call
// and closes its connection without an answer, as a node that restarted between two
// calls does to the connection the client kept. It counts the calls it read.
func closesSecondCall(t *testing.T) (*Client, *atomic.Int32) {
	var calls atomic.Int32
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, `{"result":null,"error":null,"id":1}`)
	})
	return c, &calls
}

func TestReadOnlyCallIsSentAgainOnANewConnection(t *testing.T) {
	g := NewWithT(t)
	c, calls := closesSecondCall(t)
	g.Expect(c.GetPeerInfo(t.Context())).Error().NotTo(HaveOccurred())
	g.Expect(c.GetPeerInfo(t.Context())).Error().NotTo(HaveOccurred())
	g.Expect(calls.Load()).To(BeEquivalentTo(3), "the closed call was sent once more")
}

func TestCallThatChangesTheNodeIsNeverSentTwice(t *testing.T) {
	g := NewWithT(t)
	c, calls := closesSecondCall(t)
	g.Expect(c.AddNode(t.Context(), "127.0.0.2:18444", AddNodeOneTry)).To(Succeed())
	g.Expect(c.AddNode(t.Context(), "127.0.0.2:18444", AddNodeOneTry)).To(MatchError(ErrConnectionClosed))
	g.Expect(calls.Load()).To(BeEquivalentTo(2))
}

func TestBodyThatIsNotJSON(t *testing.T) {
	g := NewWithT(t)
	page := "<!DOCTYPE html><html><head><title>Proxy error</title></head><body>upstream unreachable</body></html>"
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, page)
	})
	_, err := c.GetBlockchainInfo(t.Context())
	g.Expect(err).To(MatchError(ContainSubstring(`HTTP 502 Bad Gateway): "` + page[:64] + `"...`)))
	g.Expect(err.Error()).NotTo(ContainSubstring(page[:65]))
	expectNoCredentials(g, err)
}

// hang starts a server that answers nothing until the client goes.
func hang(t *testing.T) *Client {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection, and ends the request's
		// context, only once the handler has read the body.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
}

func TestContextDeadlineEndsTheCall(t *testing.T) {
	g := NewWithT(t)
	c := hang(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetNetworkInfo(ctx)
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	expectNoCredentials(g, err)
}

func TestDefaultTimeoutAppliesWithoutDeadline(t *testing.T) {
	g := NewWithT(t)
	c := hang(t)
	c.timeout = 100 * time.Millisecond
	_, err := c.GetNetworkInfo(context.Background())
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
}

func TestStoppedNodeIsUnreachable(t *testing.T) {
	g := NewWithT(t)
	var network bitcointest.Network
	node := startNode(t, &network, "127.250.5.1")
	c := clientOf(t, node)
	node.Stop()

	_, err := c.GetNetworkInfo(t.Context())
	g.Expect(err).To(MatchError(ContainSubstring("connection refused")))
	expectNoCredentials(g, err)
}

func TestProxyEnvironmentIsIgnored(t *testing.T) {
	g := NewWithT(t)
	for _, name := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(name, "http://127.0.0.1:1")
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	var network bitcointest.Network
	c := clientOf(t, startNode(t, &network, "127.250.6.1"))

	g.Expect(c.GetNetworkInfo(t.Context())).To(HaveField("NetworkActive", true))
	// Go never proxies loopback addresses, so the call above alone would pass
	// with http.ProxyFromEnvironment too; pod IPs are not loopback.
	g.Expect(c.http.Transport.(*http.Transport).Proxy).To(BeNil())
}

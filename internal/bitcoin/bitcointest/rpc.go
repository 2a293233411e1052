package bitcointest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"time"
)

// Error codes from Bitcoin Core's src/rpc/protocol.h, kept apart from the
// client's so that the double does not share the client's mistakes.
const (
	rpcMiscError              = -1
	rpcTypeError              = -3
	rpcInvalidAddressOrKey    = -5
	rpcInvalidParameter       = -8
	rpcClientNodeAlreadyAdded = -23
	rpcClientNodeNotAdded     = -24
	rpcClientNodeNotConnected = -29
	rpcInvalidRequest         = -32600
	rpcMethodNotFound         = -32601
	rpcParseError             = -32700
)

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// request is a JSON-RPC request; raw fields keep their JSON type for the
// checks of JSONRPCRequest::parse (src/rpc/request.cpp).
type request struct {
	ID      json.RawMessage `json:"id"`
	JSONRPC json.RawMessage `json:"jsonrpc"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// response is the legacy (JSON-RPC 1.0) reply, which carries both keys.
type response struct {
	Result any             `json:"result"`
	Error  *rpcError       `json:"error"`
	ID     json.RawMessage `json:"id"`
}

type method func(n *Node, params []json.RawMessage) (any, *rpcError)

var methods = map[string]method{
	"addnode":           (*Node).addnode,
	"disconnectnode":    (*Node).disconnectnode,
	"getaddednodeinfo":  (*Node).getaddednodeinfo,
	"getpeerinfo":       (*Node).getpeerinfo,
	"getnetworkinfo":    (*Node).getnetworkinfo,
	"getblockchaininfo": (*Node).getblockchaininfo,
	"generatetoaddress": (*Node).generatetoaddress,
	"getblockhash":      (*Node).getblockhash,
	"getbestblockhash":  (*Node).getbestblockhash,
	"getchaintips":      (*Node).getchaintips,
	"setban":            (*Node).setban,
	"listbanned":        (*Node).listbanned,
}

// ServeHTTP answers as HTTPReq_JSONRPC in Bitcoin Core's src/httprpc.cpp:
// the method check, then authentication (401 with an empty body), then the
// JSON-RPC request. Core also sleeps 250 ms after a wrong password; the
// double does not, to keep tests fast.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, "JSONRPC server handles only POST requests")
		return
	}
	if user, password, ok := r.BasicAuth(); !ok || user != n.user || password != n.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	n.network.mu.Lock()
	latency := n.latency
	n.network.mu.Unlock()
	select {
	case <-time.After(latency):
	case <-r.Context().Done():
		return // the client gave up
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client is gone
	}
	var req request
	result, rpcErr := n.handle(body, &req)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status(rpcErr))
	// The results are plain structs and maps, which always marshal.
	reply, _ := json.Marshal(response{Result: result, Error: rpcErr, ID: req.ID})
	_, _ = w.Write(append(reply, '\n'))
}

// status is the HTTP status of a legacy reply (JSONErrorReply in httprpc.cpp).
func status(err *rpcError) int {
	switch {
	case err == nil:
		return http.StatusOK
	case err.Code == rpcInvalidRequest:
		return http.StatusBadRequest
	case err.Code == rpcMethodNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// handle parses body into req and runs it.
func (n *Node) handle(body []byte, req *request) (any, *rpcError) {
	if err := json.Unmarshal(body, req); err != nil {
		return nil, &rpcError{rpcParseError, "Parse error (bitcointest models no batches)"}
	}
	// Core 28 takes "1.0", "2.0" or no jsonrpc; the double answers in the
	// legacy format only, which is what "1.0" and no field ask for.
	if !absent(req.JSONRPC) && string(req.JSONRPC) != `"1.0"` {
		return nil, &rpcError{rpcInvalidRequest, "JSON-RPC version not supported (bitcointest models 1.0 only)"}
	}
	if absent(req.Method) {
		return nil, &rpcError{rpcInvalidRequest, "Missing method"}
	}
	var name string
	if err := json.Unmarshal(req.Method, &name); err != nil {
		return nil, &rpcError{rpcInvalidRequest, "Method must be a string"}
	}
	var params []json.RawMessage
	if !absent(req.Params) {
		if err := json.Unmarshal(req.Params, &params); err != nil {
			return nil, &rpcError{rpcInvalidRequest, "Params must be an array (bitcointest models no named params)"}
		}
	}
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	n.calls[name]++
	call, ok := methods[name]
	if !ok {
		return nil, &rpcError{rpcMethodNotFound, "Method not found"}
	}
	return call(n, params)
}

// absent is a missing field or a null, which Core treats alike.
func absent(raw json.RawMessage) bool {
	return raw == nil || string(raw) == "null"
}

// arity is RPCHelpMan's argument count check, which fails with the help text.
func arity(params []json.RawMessage, lo, hi int, usage string) *rpcError {
	if len(params) < lo || len(params) > hi {
		return &rpcError{rpcMiscError, usage}
	}
	return nil
}

func stringParam(raw json.RawMessage, field string) (string, *rpcError) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &rpcError{rpcTypeError, fmt.Sprintf("JSON value %s for field %s is not of expected type string", raw, field)}
	}
	return s, nil
}

const addnodeUsage = `addnode "node" "command" ( v2transport )`

// addnode follows addnode in src/rpc/net.cpp and CConnman::AddNode and
// RemoveAddedNode in src/net.cpp.
func (n *Node) addnode(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 2, 3, addnodeUsage); err != nil {
		return nil, err
	}
	node, err := stringParam(params[0], "node")
	if err != nil {
		return nil, err
	}
	command, err := stringParam(params[1], "command")
	if err != nil {
		return nil, err
	}
	switch command {
	case "onetry":
		n.network.connect(n, node, false)
	case "add":
		if n.hasAdded(node) {
			return nil, &rpcError{rpcClientNodeAlreadyAdded, "Error: Node already added"}
		}
		n.added = append(n.added, node)
		if n.running {
			n.network.reconcileNode(n)
		}
	case "remove":
		i := slices.Index(n.added, node)
		if i < 0 {
			return nil, &rpcError{rpcClientNodeNotAdded, "Error: Node could not be removed. It has not been added previously."}
		}
		// Only the entry goes: the connection stays open, holding its slot.
		n.added = slices.Delete(n.added, i, i+1)
	default:
		return nil, &rpcError{rpcMiscError, addnodeUsage}
	}
	return nil, nil
}

// hasAdded is CConnman::AddNode's duplicate check: the same string, or the
// same ip:port spelled differently.
func (n *Node) hasAdded(node string) bool {
	addr, err := netip.ParseAddrPort(node)
	return slices.ContainsFunc(n.added, func(added string) bool {
		other, otherErr := netip.ParseAddrPort(added)
		return added == node || err == nil && otherErr == nil && addr == other
	})
}

// disconnectnode follows CConnman::DisconnectNode(const std::string&), which
// matches the peer's getpeerinfo addr. Only the address form is modelled.
func (n *Node) disconnectnode(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 1, 1, `disconnectnode "address" (bitcointest models no nodeid)`); err != nil {
		return nil, err
	}
	address, err := stringParam(params[0], "address")
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(n.network.links, func(l *link) bool {
		return l.from == n && l.dest == address || l.to == n && l.source.String() == address
	})
	if i < 0 {
		return nil, &rpcError{rpcClientNodeNotConnected, "Node not found in connected nodes"}
	}
	found := n.network.links[i]
	n.network.drop(func(l *link) bool { return l == found })
	return nil, nil
}

type addedNodeInfo struct {
	AddedNode string             `json:"addednode"`
	Connected bool               `json:"connected"`
	Addresses []addedNodeAddress `json:"addresses"`
}

type addedNodeAddress struct {
	Address   string `json:"address"`
	Connected string `json:"connected"`
}

// getaddednodeinfo follows getaddednodeinfo in src/rpc/net.cpp and
// CConnman::GetAddedNodeInfo in src/net.cpp.
func (n *Node) getaddednodeinfo(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 1, `getaddednodeinfo ( "node" )`); err != nil {
		return nil, err
	}
	added := n.added
	if len(params) == 1 {
		node, err := stringParam(params[0], "node")
		if err != nil {
			return nil, err
		}
		if !slices.Contains(added, node) {
			return nil, &rpcError{rpcClientNodeNotAdded, "Error: Node has not been added."}
		}
		added = []string{node}
	}
	infos := []addedNodeInfo{}
	for _, node := range added {
		info := addedNodeInfo{AddedNode: node, Addresses: []addedNodeAddress{}}
		if l := n.network.outbound(n, node); l != nil {
			info.Connected = true
			info.Addresses = append(info.Addresses, addedNodeAddress{l.to.p2p.String(), "outbound"})
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// peerInfo holds the getpeerinfo fields the double models.
type peerInfo struct {
	ID             int    `json:"id"`
	Addr           string `json:"addr"`
	AddrBind       string `json:"addrbind"`
	Version        int    `json:"version"`
	Subver         string `json:"subver"`
	Inbound        bool   `json:"inbound"`
	SyncedHeaders  int    `json:"synced_headers"`
	SyncedBlocks   int    `json:"synced_blocks"`
	ConnectionType string `json:"connection_type"`
}

const (
	clientVersion   = 280000
	subversion      = "/Satoshi:28.0.0/"
	protocolVersion = 70016
)

// getpeerinfo follows getpeerinfo in src/rpc/net.cpp, in peer id order as
// CConnman keeps its nodes. Both nodes are taken to be on one chain, so the
// blocks in common are the lower tip.
func (n *Node) getpeerinfo(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 0, "getpeerinfo"); err != nil {
		return nil, err
	}
	peers := []peerInfo{}
	for _, l := range n.network.links {
		if l.from == n || l.to == n {
			peers = append(peers, l.peerInfo(n))
		}
	}
	slices.SortFunc(peers, func(a, b peerInfo) int { return a.ID - b.ID })
	return peers, nil
}

// getnetworkinfo follows getnetworkinfo in src/rpc/net.cpp.
func (n *Node) getnetworkinfo(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 0, "getnetworkinfo"); err != nil {
		return nil, err
	}
	in, out := 0, 0
	for _, l := range n.network.links {
		switch n {
		case l.from:
			out++
		case l.to:
			in++
		}
	}
	return map[string]any{
		"version":         clientVersion,
		"subversion":      subversion,
		"protocolversion": protocolVersion,
		"localrelay":      true,
		"connections":     in + out,
		"connections_in":  in,
		"connections_out": out,
		"networkactive":   true,
	}, nil
}

// getblockchaininfo follows getblockchaininfo in src/rpc/blockchain.cpp. A
// node at height 0 is in initial block download, as a new regtest node is:
// its genesis block is older than -maxtipage.
func (n *Node) getblockchaininfo(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 0, "getblockchaininfo"); err != nil {
		return nil, err
	}
	return map[string]any{
		"chain":                "regtest",
		"blocks":               n.height(),
		"headers":              n.height(),
		"bestblockhash":        n.tip(),
		"verificationprogress": 1,
		"initialblockdownload": n.height() == 0,
		"pruned":               false,
	}, nil
}

// peerInfo is the link as n, one of its ends, sees it. An outbound peer's
// addr is the string n dialled (CNode::m_addr_name); an inbound one's is the
// far end of the socket.
func (l *link) peerInfo(n *Node) peerInfo {
	info := peerInfo{Version: protocolVersion, Subver: subversion}
	far := l.to
	if n == l.from {
		info.ID, info.Addr, info.AddrBind, info.ConnectionType = l.fromID, l.dest, l.source.String(), "manual"
	} else {
		far = l.from
		info.ID, info.Addr, info.AddrBind, info.ConnectionType = l.toID, l.source.String(), n.p2p.String(), "inbound"
		info.Inbound = true
	}
	info.SyncedHeaders = commonHeight(n.chain, far.chain)
	info.SyncedBlocks = info.SyncedHeaders
	return info
}

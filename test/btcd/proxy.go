package btcd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// The proxy answers on <pod IP>:18443 as Bitcoin Core 28 would, from btcd v0.25.0's
// RPC server behind it. Sources: Bitcoin Core's src/rpc/net.cpp, src/rpc/request.cpp,
// src/httprpc.cpp and src/rpc/protocol.h (v28.0); btcd's rpcserver.go, server.go,
// rpcadapters.go and connmgr/connmanager.go (v0.25.0).
//
// Translations, by method:
//
//   - Any request: Core rejects a non-string "jsonrpc" with -32600 (request.cpp,
//     JSONRPCRequest::parse), while btcd closes the connection without an answer, so
//     the proxy answers that itself and always sends btcd "1.0". Core answers errors
//     of JSON-RPC 1.0 requests with HTTP 500, 404 for -32601 and 400 for -32600
//     (httprpc.cpp, JSONErrorReply); btcd with 200. A 401 is passed on with Core's
//     empty body.
//   - While btcd does not answer (starting, or its RPC port not open yet): -28
//     RPC_IN_WARMUP, as Core's RPC server answers from its start until the chain is
//     loaded. A killed node closes the proxy too (Node.Kill), so dials are refused.
//   - addnode: Core records the entry at once (CConnman::AddNode) and lists it with
//     "connected": false until a connection forms; btcd lists a persistent peer only
//     once connected (state.persistentPeers in server.go). btcd also cannot forget an
//     address it was told to add: a pending request is retried until it connects
//     (connmgr), and `remove` of a connected one disconnects it, then redials it
//     (handleDonePeerMsg disconnects persistent peers with a retry). So a second
//     `add` of a pending, or removed, address would open a second connection to
//     the same node. The proxy therefore keeps Core's in-memory list itself (`add`
//     of a listed node gives -23, `remove` of an unlisted one -24; net.cpp,
//     addnode), tells btcd each address once per btcd process, and keeps `remove`
//     to its own list: the connection stays up, as in Core (RemoveAddedNode does
//     not disconnect). `onetry` of an address Core is connected to does nothing
//     (OpenNetworkConnection checks AlreadyConnectedToAddress), and never fails;
//     btcd opens a second connection to an address whose added connection is
//     still pending, as after `add` then `onetry`. The proxy tells btcd an `onetry`
//     only for an address btcd neither was told to add nor holds an outbound
//     connection to, and drops btcd's refusals. Host names are refused: a lookup
//     would leave this machine.
//   - getaddednodeinfo: Core takes an optional node (-24 if it is not listed);
//     btcd requires a leading "dns" boolean that Core removed in 0.14. The entries
//     are the proxy's list; "connected" and "addresses" come from btcd's
//     getaddednodeinfo with dns=true (no lookups for IP literals).
//   - disconnectnode: Core disconnects any connection by address or node id, or
//     answers -29; btcd's `node disconnect` refuses a persistent (added) peer with
//     -1 "use remove" and says "peer not found" with -8. The proxy maps these to
//     `node remove` and -29. Like Core, btcd then redials the added node later.
//   - getpeerinfo: btcd's entries, plus Core's "connection_type" ("inbound", or
//     "manual": on loopback btcd's address manager holds no routable addresses, so
//     its only outbound connections are those addnode opened) and
//     "synced_blocks"/"synced_headers" from btcd's "currentheight", the peer's
//     last announced height.
//   - getnetworkinfo: unimplemented in btcd (rpcUnimplemented); built from btcd's
//     getinfo and getpeerinfo.
//   - getblockchaininfo: btcd's, plus Core's "initialblockdownload" (btcd never
//     sets it): true until the tip is younger than Core's -maxtipage of 24 hours,
//     then false for good, as Core's ChainstateManager::IsInitialBlockDownload.
//   - generatetoaddress, setban, listbanned: see proxy_chain.go.
//   - Anything else is passed on unchanged (e.g. btcd's `generate`).
//
// Known differences left: a removed node that btcd had been told to add is still
// redialled by btcd when its connection drops, or after `disconnectnode`; Core would
// let it go. And btcd in regtest syncs only from peers whose address is 127.0.0.1
// (netsync isSyncCandidate), which here are its inbound ones, and ignores block
// announcements from other peers while its tip is older than 24 hours: from genesis,
// the first blocks can take up to btcd's 30 s stall timeout to reach a node.
type proxy struct {
	// btcdClient talks to btcd on loopback, never through HTTP(S)_PROXY.
	btcdClient *http.Client

	mu       sync.Mutex
	upstream string
	server   *http.Server
	served   chan struct{}
	// added is Core's added-node list, in the order of the addnode calls.
	added []string
	// told holds the addresses btcd was told to add since it started.
	told map[string]bool
	// leftIBD latches Core's initial block download state.
	leftIBD bool
	// bans is Core's ban list, kept by the proxy (proxy_chain.go).
	bans banned

	// addnodeMu keeps each addnode translation, btcd's call and the list change,
	// one step.
	addnodeMu sync.Mutex
}

func newProxy() *proxy {
	return &proxy{btcdClient: &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 20 * time.Second},
	}}
}

func (p *proxy) listen(addr, upstream string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	server := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	p.mu.Lock()
	p.upstream, p.server, p.served = upstream, server, served
	p.mu.Unlock()
	go func() {
		defer close(served)
		_ = server.Serve(ln) // ends with http.ErrServerClosed, from close
	}()
	return nil
}

// close stops serving and ends open connections, as the death of bitcoind would.
func (p *proxy) close() {
	p.mu.Lock()
	server, served := p.server, p.served
	p.server = nil
	p.mu.Unlock()
	if server != nil {
		_ = server.Close()
		<-served
	}
	p.btcdClient.CloseIdleConnections()
}

// reset forgets what a restarted bitcoind forgets.
func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.added, p.told, p.leftIBD = nil, nil, false
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Codes of Bitcoin Core's src/rpc/protocol.h that the proxy answers itself, besides
// those internal/bitcoin names (bitcoin.Code*).
const (
	codeTypeError        = -3
	codeInvalidParameter = -8
	codeInvalidRequest   = -32600
	codeInvalidParams    = -32602
	codeParseError       = -32700
)

// errUnauthorized is btcd's 401.
var errUnauthorized = errors.New("btcd rejected the credentials (HTTP 401)")

// btcd calls method on btcd with the caller's Authorization header. A transport
// error means btcd is not answering.
func (p *proxy) btcd(ctx context.Context, auth, method string, params ...any) (json.RawMessage, *rpcError, error) {
	if params == nil {
		params = []any{}
	}
	payload, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	upstream := p.upstream
	p.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+upstream+"/", bytes.NewReader(payload))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := p.btcdClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, nil, errUnauthorized
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, nil, fmt.Errorf("btcd answered HTTP %d with no JSON-RPC reply: %.100q", resp.StatusCode, body)
	}
	return reply.Result, reply.Error, nil
}

// direct runs a btcd method for the harness itself, with its own credentials.
func (p *proxy) direct(ctx context.Context, user, password, method string, params []any, result any) error {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	raw, rerr, err := p.btcd(ctx, auth, method, params...)
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	if rerr != nil {
		return fmt.Errorf("btcd %s: %w", method, &bitcoin.RPCError{Code: rerr.Code, Message: rerr.Message})
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(raw, result)
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "JSONRPC server handles only POST requests", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	var req struct {
		JSONRPC json.RawMessage   `json:"jsonrpc"`
		ID      json.RawMessage   `json:"id"`
		Method  string            `json:"method"`
		Params  []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		// Batches and named parameters land here too: the operator sends neither.
		reply(w, nil, nil, &rpcError{codeParseError, "Parse error"})
		return
	}
	if len(req.JSONRPC) > 0 && string(req.JSONRPC) != "null" && req.JSONRPC[0] != '"' {
		reply(w, req.ID, nil, &rpcError{codeInvalidRequest, "jsonrpc field must be a string"})
		return
	}
	result, rerr, err := p.translate(r.Context(), r.Header.Get("Authorization"), req.Method, req.Params)
	switch {
	case errors.Is(err, errUnauthorized):
		// Core's 401: no body, a realm of its own.
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	case err != nil:
		rerr = &rpcError{bitcoin.CodeInWarmup, "Loading block index… (btcd behind the test proxy is not answering: " + err.Error() + ")"}
	}
	reply(w, req.ID, result, rerr)
}

// reply writes a JSON-RPC 1.0 reply with Core's HTTP statuses.
func reply(w http.ResponseWriter, id json.RawMessage, result any, rerr *rpcError) {
	if id == nil {
		id = json.RawMessage("null")
	}
	status := http.StatusOK
	if rerr != nil {
		result = nil
		switch rerr.Code {
		case codeInvalidRequest:
			status = http.StatusBadRequest
		case bitcoin.CodeMethodNotFound:
			status = http.StatusNotFound
		default:
			status = http.StatusInternalServerError
		}
	}
	body, _ := json.Marshal(map[string]any{"result": result, "error": rerr, "id": id})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func (p *proxy) translate(ctx context.Context, auth, method string, params []json.RawMessage) (any, *rpcError, error) {
	switch method {
	case "addnode":
		return p.addNode(ctx, auth, params)
	case "getaddednodeinfo":
		return p.getAddedNodeInfo(ctx, auth, params)
	case "disconnectnode":
		return p.disconnectNode(ctx, auth, params)
	case "getpeerinfo":
		return p.getPeerInfo(ctx, auth)
	case "getnetworkinfo":
		return p.getNetworkInfo(ctx, auth)
	case "getblockchaininfo":
		return p.getBlockchainInfo(ctx, auth)
	case "generatetoaddress":
		return p.generateToAddress(ctx, auth, params)
	case "setban":
		return p.setBan(ctx, auth, params)
	case "listbanned":
		return p.listBanned(ctx, auth)
	}
	args := make([]any, len(params))
	for i, param := range params {
		args[i] = param
	}
	raw, rerr, err := p.btcd(ctx, auth, method, args...)
	return raw, rerr, err
}

// stringParam returns params[i] as a string; ok is false if it is absent or null.
func stringParam(params []json.RawMessage, i int) (s string, ok bool, rerr *rpcError) {
	if i >= len(params) || string(params[i]) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(params[i], &s); err != nil {
		return "", false, &rpcError{codeTypeError, fmt.Sprintf("JSON value %s is not of expected type string", params[i])}
	}
	return s, true, nil
}

func (p *proxy) addNode(ctx context.Context, auth string, params []json.RawMessage) (any, *rpcError, error) {
	node, ok1, rerr := stringParam(params, 0)
	if rerr != nil {
		return nil, rerr, nil
	}
	command, ok2, rerr := stringParam(params, 1)
	if rerr != nil {
		return nil, rerr, nil
	}
	// A third parameter, v2transport, asks for BIP324 (Core 26); btcd picks the
	// transport itself.
	if !ok1 || !ok2 || len(params) > 3 || command != "add" && command != "remove" && command != "onetry" {
		return nil, &rpcError{bitcoin.CodeMiscError, `addnode "node" "command" ( v2transport )`}, nil
	}
	if _, err := netip.ParseAddrPort(node); err != nil {
		return nil, &rpcError{codeInvalidParameter, "the btcd test proxy takes only ip:port nodes: a host name would need a DNS lookup"}, nil
	}
	p.addnodeMu.Lock()
	defer p.addnodeMu.Unlock()
	p.mu.Lock()
	listed := slices.Contains(p.added, node)
	p.mu.Unlock()
	switch {
	case command == "add" && listed:
		return nil, &rpcError{bitcoin.CodeNodeAlreadyAdded, "Error: Node already added"}, nil
	case command == "remove" && !listed:
		return nil, &rpcError{bitcoin.CodeNodeNotAdded, "Error: Node could not be removed. It has not been added previously."}, nil
	}
	p.mu.Lock()
	told := p.told[node]
	p.mu.Unlock()
	if command == "onetry" && !told {
		connected, rerr, err := p.dialled(ctx, auth, node)
		if err != nil || rerr != nil {
			return nil, rerr, err
		}
		told = connected
	}
	if (command == "onetry" || command == "add") && !told {
		// btcd answers addnode only once its peer handler runs, which may be after
		// the caller gave up: the call must not end with the caller's context, or a
		// retry would tell btcd twice.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// btcd's refusals are states Core's list does not have (see the type's
		// comment): only transport failures and 401 count.
		if _, _, err := p.btcd(ctx, auth, "addnode", node, command); err != nil {
			return nil, nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch command {
	case "add":
		if p.told == nil {
			p.told = map[string]bool{}
		}
		p.told[node] = true
		p.added = append(p.added, node)
	case "remove":
		p.added = slices.DeleteFunc(p.added, func(a string) bool { return a == node })
	}
	return nil, nil, nil
}

// dialled reports whether btcd holds an outbound connection to node.
func (p *proxy) dialled(ctx context.Context, auth, node string) (bool, *rpcError, error) {
	peers, rerr, err := p.peers(ctx, auth)
	if err != nil || rerr != nil {
		return false, rerr, err
	}
	return slices.ContainsFunc(peers, func(peer map[string]any) bool {
		inbound, _ := peer["inbound"].(bool)
		return !inbound && peer["addr"] == node
	}), nil, nil
}

// nativeAddedNode is an entry of btcd's getaddednodeinfo with dns=true.
type nativeAddedNode struct {
	AddedNode string `json:"addednode"`
	Connected bool   `json:"connected"`
}

func (p *proxy) getAddedNodeInfo(ctx context.Context, auth string, params []json.RawMessage) (any, *rpcError, error) {
	filter, filtered, rerr := stringParam(params, 0)
	if rerr != nil {
		return nil, rerr, nil
	}
	raw, rerr, err := p.btcd(ctx, auth, "getaddednodeinfo", true)
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	var native []nativeAddedNode
	if err := json.Unmarshal(raw, &native); err != nil {
		return nil, &rpcError{bitcoin.CodeMiscError, "unexpected getaddednodeinfo from btcd: " + err.Error()}, nil
	}
	type address struct {
		Address   string `json:"address"`
		Connected string `json:"connected"`
	}
	type entry struct {
		AddedNode string    `json:"addednode"`
		Connected bool      `json:"connected"`
		Addresses []address `json:"addresses"`
	}
	p.mu.Lock()
	added := slices.Clone(p.added)
	p.mu.Unlock()
	if filtered && !slices.Contains(added, filter) {
		return nil, &rpcError{bitcoin.CodeNodeNotAdded, "Error: Node has not been added."}, nil
	}
	result := []entry{}
	for _, node := range added {
		if filtered && node != filter {
			continue
		}
		e := entry{AddedNode: node, Addresses: []address{}}
		if slices.ContainsFunc(native, func(n nativeAddedNode) bool { return n.AddedNode == node && n.Connected }) {
			// Added nodes are dialled, never inbound.
			e.Connected, e.Addresses = true, []address{{Address: node, Connected: "outbound"}}
		}
		result = append(result, e)
	}
	return result, nil, nil
}

func (p *proxy) disconnectNode(ctx context.Context, auth string, params []json.RawMessage) (any, *rpcError, error) {
	address, hasAddress, rerr := stringParam(params, 0)
	if rerr != nil {
		return nil, rerr, nil
	}
	var target string
	hasID := len(params) > 1 && string(params[1]) != "null"
	switch {
	case hasAddress && address != "" && !hasID:
		target = address
	case hasID && (!hasAddress || address == ""):
		var id int64
		if err := json.Unmarshal(params[1], &id); err != nil {
			return nil, &rpcError{codeTypeError, "nodeid must be a number"}, nil
		}
		target = fmt.Sprint(id)
	default:
		return nil, &rpcError{codeInvalidParams, "Only one of address and nodeid should be provided."}, nil
	}
	_, rerr, err := p.btcd(ctx, auth, "node", "disconnect", target)
	if err == nil && rerr != nil && rerr.Code == bitcoin.CodeMiscError {
		// "can't disconnect a permanent peer, use remove"
		_, rerr, err = p.btcd(ctx, auth, "node", "remove", target)
	}
	if err != nil {
		return nil, nil, err
	}
	if rerr != nil {
		return nil, &rpcError{bitcoin.CodeNodeNotConnected, "Node not found in connected nodes"}, nil
	}
	return nil, nil, nil
}

// peers returns btcd's getpeerinfo entries as objects, to extend them field by field.
func (p *proxy) peers(ctx context.Context, auth string) ([]map[string]any, *rpcError, error) {
	raw, rerr, err := p.btcd(ctx, auth, "getpeerinfo")
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	var peers []map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&peers); err != nil {
		return nil, &rpcError{bitcoin.CodeMiscError, "unexpected getpeerinfo from btcd: " + err.Error()}, nil
	}
	return peers, nil, nil
}

func (p *proxy) getPeerInfo(ctx context.Context, auth string) (any, *rpcError, error) {
	peers, rerr, err := p.peers(ctx, auth)
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	for _, peer := range peers {
		if inbound, _ := peer["inbound"].(bool); inbound {
			peer["connection_type"] = bitcoin.ConnectionTypeInbound
		} else {
			peer["connection_type"] = bitcoin.ConnectionTypeManual
		}
		height, ok := peer["currentheight"]
		if !ok {
			height = json.Number("0") // btcd omits a zero height
		}
		peer["synced_blocks"], peer["synced_headers"] = height, height
	}
	return peers, nil, nil
}

func (p *proxy) getNetworkInfo(ctx context.Context, auth string) (any, *rpcError, error) {
	raw, rerr, err := p.btcd(ctx, auth, "getinfo")
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	var info struct {
		Version         int `json:"version"`
		ProtocolVersion int `json:"protocolversion"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, &rpcError{bitcoin.CodeMiscError, "unexpected getinfo from btcd: " + err.Error()}, nil
	}
	peers, rerr, err := p.peers(ctx, auth)
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	in := 0
	for _, peer := range peers {
		if inbound, _ := peer["inbound"].(bool); inbound {
			in++
		}
	}
	// btcd's version is 1000000*major + 10000*minor + 100*patch (version.go).
	v := info.Version
	return map[string]any{
		"version":         v,
		"subversion":      fmt.Sprintf("/btcd:%d.%d.%d/", v/1000000, v/10000%100, v/100%100),
		"protocolversion": info.ProtocolVersion,
		"networkactive":   true,
		"connections":     len(peers),
		"connections_in":  in,
		"connections_out": len(peers) - in,
		"localaddresses":  []any{},
		"warnings":        "",
	}, nil, nil
}

// maxTipAge is Core's DEFAULT_MAX_TIP_AGE (src/validation.h).
const maxTipAge = 24 * time.Hour

func (p *proxy) getBlockchainInfo(ctx context.Context, auth string) (any, *rpcError, error) {
	raw, rerr, err := p.btcd(ctx, auth, "getblockchaininfo")
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	var info map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil {
		return nil, &rpcError{bitcoin.CodeMiscError, "unexpected getblockchaininfo from btcd: " + err.Error()}, nil
	}
	p.mu.Lock()
	left := p.leftIBD
	p.mu.Unlock()
	if !left {
		hash, _ := info["bestblockhash"].(string)
		raw, rerr, err := p.btcd(ctx, auth, "getblockheader", hash, true)
		if err != nil || rerr != nil {
			return nil, rerr, err
		}
		var header struct {
			Time int64 `json:"time"`
		}
		if err := json.Unmarshal(raw, &header); err != nil {
			return nil, &rpcError{bitcoin.CodeMiscError, "unexpected getblockheader from btcd: " + err.Error()}, nil
		}
		if time.Since(time.Unix(header.Time, 0)) < maxTipAge {
			p.mu.Lock()
			p.leftIBD, left = true, true
			p.mu.Unlock()
		}
	}
	info["initialblockdownload"] = !left
	return info, nil, nil
}

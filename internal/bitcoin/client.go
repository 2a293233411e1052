// Package bitcoin is a minimal Bitcoin Core JSON-RPC client for the calls the
// operator makes to bitcoind pods: managing added nodes and reading peer,
// network and chain state. Result shapes follow Bitcoin Core 28's RPC help
// (src/rpc/net.cpp, src/rpc/blockchain.cpp).
package bitcoin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	defaultTimeout = 5 * time.Second
	dialTimeout    = 3 * time.Second
	// A round's calls to a node follow each other within milliseconds and reuse
	// one connection; a settled network's rounds are 30 s apart. An idle
	// connection costs two goroutines and their buffers, some 25 KiB: held
	// between rounds, 3,000 nodes' connections would be some 75 MiB of the
	// operator's memory. Bitcoin Core closes idle keep-alive connections after
	// -rpcservertimeout (30 s by default): dropping ours first also avoids
	// sending a POST on a socket the server is closing.
	idleConnTimeout = 5 * time.Second
	// maxIdleConns bounds the idle connections kept for all nodes together: as
	// many as the operator calls at once (its 64 call slots), so that what it
	// keeps does not grow with the nodes of its tenants.
	maxIdleConns = 64
)

// transport carries every client's calls. One transport for all nodes bounds the
// idle connections in total (maxIdleConns, the least recently used closed first),
// where a transport per node would keep up to two per node.
var transport = newTransport()

// Client calls one bitcoind's RPC server. It is safe for concurrent use. Its
// connections are the shared transport's, so a client needs no closing.
type Client struct {
	address  string
	url      string
	user     string
	password string
	timeout  time.Duration
	http     *http.Client
	ids      atomic.Uint64
}

// New returns a client for the RPC server at address, an "ip:port". Host
// names are refused at dial time: the operator only ever dials pod IPs and
// must not depend on DNS.
func New(address, user, password string) *Client {
	return &Client{
		address:  address,
		url:      (&url.URL{Scheme: "http", Host: address, Path: "/"}).String(),
		user:     user,
		password: password,
		timeout:  defaultTimeout,
		http:     &http.Client{Transport: transport},
	}
}

func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		// Under OLM the operator inherits HTTP(S)_PROXY; a proxy must never
		// carry calls, and their credentials, meant for pod IPs.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, err := netip.ParseAddrPort(addr); err != nil {
				return nil, fmt.Errorf("failed to dial %q, which is not an ip:port: %w", addr, err)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		// A node is mostly called one call at a time.
		MaxIdleConns:        maxIdleConns,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     idleConnTimeout,
	}
}

type request struct {
	// A string: Bitcoin Core 28 rejects a non-string jsonrpc field, and btcd
	// closes the connection on a number.
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// call runs method and decodes its result into result, which may be nil for
// methods that return null.
func (c *Client) call(ctx context.Context, method string, params []any, result any) (err error) {
	defer observe(method, time.Now(), &err)
	// Each call gets the client's timeout, or less when ctx ends sooner (a round's
	// deadline, the operator's shutdown).
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.post(ctx, method, params, result); err != nil {
		return fmt.Errorf("failed to call %s on %s: %w", method, c.address, err)
	}
	return nil
}

// post sends the request and decodes the answer into result as it arrives.
func (c *Client) post(ctx context.Context, method string, params []any, result any) error {
	payload, err := json.Marshal(request{JSONRPC: "1.0", ID: c.ids.Add(1), Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("failed to encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("failed to build request: %w", err)
	}
	req.SetBasicAuth(c.user, c.password)
	req.Header.Set("Content-Type", "application/json")
	if readOnly[method] {
		// Sent on an idle connection the node had closed (it restarted, or a new pod
		// took its IP), a call fails before any answer. net/http sends it again on a
		// new connection only if it is marked idempotent; a nil header value marks it
		// so without sending anything. Calls that change the node are never repeated.
		req.Header["Idempotency-Key"] = nil
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	body := budgeted(ctx, resp.Body)
	defer body.release()
	return decodeResponse(resp.StatusCode, body, result)
}

// readOnly are the methods that change nothing on the node, safe to send twice.
var readOnly = map[string]bool{
	"getaddednodeinfo": true, "getbestblockhash": true, "getblockchaininfo": true, "getblockhash": true,
	"getchaintips": true, "getnetworkinfo": true, "getpeerinfo": true, "listbanned": true,
}

// transportError drops the *url.Error layer, whose text repeats the URL that
// call already names, and marks connections the server closed on us.
func transportError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%w: %w", ErrConnectionClosed, err)
	}
	return err
}

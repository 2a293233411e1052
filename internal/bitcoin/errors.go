package bitcoin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes from Bitcoin Core's src/rpc/protocol.h.
const (
	CodeMiscError        = -1  // RPC_MISC_ERROR, also a wrong argument count
	CodeNodeAlreadyAdded = -23 // RPC_CLIENT_NODE_ALREADY_ADDED
	CodeNodeNotAdded     = -24 // RPC_CLIENT_NODE_NOT_ADDED
	CodeInWarmup         = -28 // RPC_IN_WARMUP, while bitcoind is starting
	CodeNodeNotConnected = -29 // RPC_CLIENT_NODE_NOT_CONNECTED
	CodeMethodNotFound   = -32601
)

var (
	// ErrUnauthorized is a 401: Bitcoin Core answers it with an empty body.
	ErrUnauthorized = errors.New("bitcoind rejected the RPC credentials (HTTP 401): check the RPC user and password")
	// ErrConnectionClosed is a connection closed before a whole response, as
	// when bitcoind is stopping or the address is not its RPC port.
	ErrConnectionClosed = errors.New("connection closed before a complete response: bitcoind may be stopping, or this is not its RPC port")
)

// RPCError is an error object returned by bitcoind.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("bitcoind RPC error %d: %s", e.Code, e.Message)
}

// hasCode reports whether err is an RPCError with the given code.
func hasCode(err error, code int) bool {
	var rpcErr *RPCError
	return errors.As(err, &rpcErr) && rpcErr.Code == code
}

// decodeResponse decodes a legacy (JSON-RPC 1.0) Bitcoin Core response into
// result, which may be nil. Core sends RPC errors with HTTP 500 (404 for an
// unknown method, 400 for a bad request) and a JSON body, so the body decides
// whatever the status.
func decodeResponse(status int, body []byte, result any) error {
	if status == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	// A map, not a struct: encoding/json matches struct fields
	// case-insensitively, and only Core's exact keys should count.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return fmt.Errorf("response is not a JSON-RPC object (HTTP %d %s): %s",
			status, http.StatusText(status), quotePrefix(body))
	}
	if raw, ok := fields["error"]; ok && !isNull(raw) {
		rpcErr := &RPCError{}
		if err := json.Unmarshal(raw, rpcErr); err != nil {
			return fmt.Errorf("failed to decode error object %s: %w", quotePrefix(raw), err)
		}
		return rpcErr
	}
	if status != http.StatusOK {
		return fmt.Errorf("unexpected HTTP %d %s without an error object", status, http.StatusText(status))
	}
	raw, ok := fields["result"]
	if !ok {
		return errors.New("response has no result")
	}
	if result == nil || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("failed to decode result: %w", err)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return string(raw) == "null"
}

// quotePrefix quotes at most the first 64 bytes of b, enough to recognise an
// HTML page or a proxy's reply without flooding logs.
func quotePrefix(b []byte) string {
	const limit = 64
	if len(b) <= limit {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q...", b[:limit])
}

package bitcoin

import (
	"errors"
	"fmt"
)

// Error codes from Bitcoin Core's src/rpc/protocol.h.
const (
	CodeMiscError         = -1  // RPC_MISC_ERROR, also a wrong argument count
	CodeInvalidAddress    = -5  // RPC_INVALID_ADDRESS_OR_KEY
	CodeInvalidParameter  = -8  // RPC_INVALID_PARAMETER, e.g. a block height out of range
	CodeNodeAlreadyAdded  = -23 // RPC_CLIENT_NODE_ALREADY_ADDED
	CodeNodeNotAdded      = -24 // RPC_CLIENT_NODE_NOT_ADDED
	CodeInWarmup          = -28 // RPC_IN_WARMUP, while bitcoind is starting
	CodeNodeNotConnected  = -29 // RPC_CLIENT_NODE_NOT_CONNECTED
	CodeInvalidIPOrSubnet = -30 // RPC_CLIENT_INVALID_IP_OR_SUBNET, also an unban of no ban
	CodeMethodNotFound    = -32601
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

// HasCode reports whether err is an RPCError with the given code.
func HasCode(err error, code int) bool { return hasCode(err, code) }

// hasCode reports whether err is an RPCError with the given code.
func hasCode(err error, code int) bool {
	var rpcErr *RPCError
	return errors.As(err, &rpcErr) && rpcErr.Code == code
}

// quotePrefix quotes at most the first 64 bytes of b, enough to recognise an
// HTML page or a proxy's reply without flooding logs.
func quotePrefix(b []byte) string {
	if len(b) <= prefixBytes {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q...", b[:prefixBytes])
}

const prefixBytes = 64

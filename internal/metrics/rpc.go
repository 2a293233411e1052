package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// Outcomes of an RPC call, and the reasons of a failure: a small fixed set, so that
// no error's text (which names addresses and ports) ever becomes a label value.
const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"

	reasonUnauthorized      = "unauthorized"       // HTTP 401: the credentials are refused
	reasonTimeout           = "timeout"            // the call's timeout or the round's deadline
	reasonCanceled          = "canceled"           // the operator's shutdown, or a network forgotten
	reasonConnectionRefused = "connection_refused" // nothing listens on the RPC port
	reasonConnectionClosed  = "connection_closed"  // closed or reset before a whole answer
	reasonRPCError          = "rpc_error"          // bitcoind answered with an error object
	reasonBadResponse       = "bad_response"       // too large, or not JSON-RPC
	reasonOther             = "other"
)

// Reasons lists every reason rpc_failures_total can carry.
var Reasons = []string{reasonUnauthorized, reasonTimeout, reasonCanceled, reasonConnectionRefused,
	reasonConnectionClosed, reasonRPCError, reasonBadResponse, reasonOther}

func init() {
	bitcoin.CallObserver = ObserveRPC
}

// ObserveRPC records one JSON-RPC call: its duration by method and outcome, and a
// failure's reason. internal/bitcoin calls it for every call a Client makes.
func ObserveRPC(method string, took time.Duration, err error) {
	reason := failureReason(err)
	outcome := outcomeSuccess
	if reason != "" {
		outcome = outcomeFailure
		rpcFailures.WithLabelValues(method, reason).Inc()
	}
	rpcDuration.WithLabelValues(method, outcome).Observe(took.Seconds())
}

// failureReason is the reason of a failed call, or "" for a success. The RPC errors
// that the client's callers take for success (-23 already added, -24 not added, -29
// not connected: the state they want) are successes here too.
func failureReason(err error) string {
	var rpcErr *bitcoin.RPCError
	var netErr net.Error
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &rpcErr):
		switch rpcErr.Code {
		case bitcoin.CodeNodeAlreadyAdded, bitcoin.CodeNodeNotAdded, bitcoin.CodeNodeNotConnected:
			return ""
		}
		return reasonRPCError
	case errors.Is(err, bitcoin.ErrUnauthorized):
		return reasonUnauthorized
	case errors.Is(err, context.Canceled):
		return reasonCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return reasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return reasonConnectionRefused
	case errors.Is(err, bitcoin.ErrConnectionClosed):
		return reasonConnectionClosed
	case errors.Is(err, bitcoin.ErrResponseTooLarge), errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		return reasonBadResponse
	}
	return reasonOther
}

// RoundEnded records a peer round that began at begun and ended with its context's
// error: nil when it completed, or why it was cut short.
func RoundEnded(begun time.Time, ctxErr error) {
	outcome := "completed"
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		outcome = "deadline_exceeded"
	case ctxErr != nil:
		outcome = "canceled"
	}
	roundDuration.WithLabelValues(outcome).Observe(time.Since(begun).Seconds())
}

// AddnodeChanges counts the addnode entries a round added and removed.
func AddnodeChanges(added, removed int) {
	addnodeChanges.WithLabelValues("added").Add(float64(added))
	addnodeChanges.WithLabelValues("removed").Add(float64(removed))
}

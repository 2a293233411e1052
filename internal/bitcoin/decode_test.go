package bitcoin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	. "github.com/onsi/gomega"
)

func TestDecodeResponse(t *testing.T) {
	long := strings.Repeat("<html>", 20)
	for name, tc := range map[string]struct {
		status int
		body   string
		want   string // error text; empty for success
	}{
		"result":             {200, `{"result":{"blocks":7},"error":null,"id":1}`, ""},
		"null result":        {200, `{"result":null,"error":null,"id":1}`, ""},
		"rpc error":          {500, `{"result":null,"error":{"code":-23,"message":"Error: Node already added"},"id":1}`, "bitcoind RPC error -23: Error: Node already added"},
		"unknown method":     {404, `{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":1}`, "bitcoind RPC error -32601: Method not found"},
		"unauthorized":       {401, ``, ErrUnauthorized.Error()},
		"empty":              {200, ``, `response is not a JSON-RPC object (HTTP 200 OK): ""`},
		"plain text":         {503, `Work queue depth exceeded`, `(HTTP 503 Service Unavailable): "Work queue depth exceeded"`},
		"long body":          {502, long, `(HTTP 502 Bad Gateway): "` + long[:64] + `"...`},
		"array":              {200, `[1]`, "not a JSON-RPC object"},
		"null":               {200, `null`, "not a JSON-RPC object"},
		"no result":          {200, `{"error":null,"id":1}`, "response has no result"},
		"keys are exact":     {200, `{"RESULT":{"blocks":7}}`, "response has no result"},
		"status without err": {500, `{"result":null,"error":null,"id":1}`, "unexpected HTTP 500 Internal Server Error without an error object"},
		"malformed error":    {500, `{"result":null,"error":"boom","id":1}`, `failed to decode error object "\"boom\""`},
		"wrong result type":  {200, `{"result":"seven","error":null,"id":1}`, "failed to decode result"},
		"trailing garbage":   {200, `{"result":{"blocks":7},"error":null,"id":1} x`, "not a JSON-RPC object"},
		"truncated":          {200, `{"result":{"blocks":7},"err`, "not a JSON-RPC object"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var info BlockchainInfo
			err := decodeResponse(tc.status, strings.NewReader(tc.body), &info)
			if tc.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestDecodeResponseFillsResult(t *testing.T) {
	g := NewWithT(t)
	var info BlockchainInfo
	g.Expect(decodeResponse(200, strings.NewReader(`{"result":{"chain":"regtest","blocks":7},"error":null,"id":1}`), &info)).To(Succeed())
	g.Expect(info).To(Equal(BlockchainInfo{Chain: "regtest", Blocks: 7}))
}

func TestDecodeResponseTypesRPCErrors(t *testing.T) {
	g := NewWithT(t)
	err := decodeResponse(500, strings.NewReader(`{"result":null,"error":{"code":-28,"message":"Loading block index…"},"id":1}`), nil)
	var rpcErr *RPCError
	g.Expect(errors.As(err, &rpcErr)).To(BeTrue())
	g.Expect(*rpcErr).To(Equal(RPCError{Code: CodeInWarmup, Message: "Loading block index…"}))
}

// FuzzDecodeResponse checks that no body makes decodeResponse panic and that
// it accepts only a 200 carrying a JSON object with a result. The seed corpus
// in testdata holds real Bitcoin Core replies.
func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var result any
		for _, target := range []any{nil, &result} {
			if decodeResponse(status, bytes.NewReader(body), target) != nil {
				continue
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
				t.Fatalf("accepted a body that is not a JSON object: %q", body)
			}
			if _, ok := fields["result"]; !ok || status != http.StatusOK {
				t.Fatalf("accepted HTTP %d without a result: %q", status, body)
			}
		}
	})
}

// endless is a valid start of an answer that never ends: a result array of zeros.
type endless struct{ sent int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.sent == 0 {
		n := copy(p, `{"result":[0`)
		e.sent += int64(n)
		return n, nil
	}
	for i := range p {
		p[i] = ",0"[i%2]
	}
	e.sent += int64(len(p))
	return len(p), nil
}

func TestAnAnswerTooLargeIsRefusedWhileItArrives(t *testing.T) {
	g := NewWithT(t)
	body := &endless{}
	var peers []Peer
	err := decodeResponse(200, body, &peers)
	g.Expect(err).To(MatchError(ErrResponseTooLarge))
	g.Expect(body.sent).To(BeNumerically("<=", MaxResponseBytes+64<<10), "reading stops at the bound")
}

func TestAReadErrorIsNotCalledBadJSON(t *testing.T) {
	g := NewWithT(t)
	err := decodeResponse(200, io.MultiReader(strings.NewReader(`{"result":`), iotest.ErrReader(syscall.ECONNRESET)), nil)
	g.Expect(err).To(MatchError(ErrConnectionClosed))
}

// BenchmarkDecodeLargeAnswer prints what decoding an answer at the bound allocates:
// the memory a hostile node can make the operator spend per call.
func BenchmarkDecodeLargeAnswer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var peers []Peer
		_ = decodeResponse(200, &endless{}, &peers)
	}
}

package controller

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// A node that says more of itself than Bitcoin Core ever does (a tenant's image may
// say anything) is cut to what Core would say: its status.nodes entry stays within
// the size that lets 1,000 entries share one object.
func TestAnswersAreCutToWhatCoreSays(t *testing.T) {
	g := NewWithT(t)
	results := map[string]any{
		"getaddednodeinfo":  []any{},
		"getpeerinfo":       []any{},
		"getblockchaininfo": map[string]any{"chain": "regtest", "blocks": 1, "bestblockhash": strings.Repeat("ab", 1000)},
		"getnetworkinfo":    map[string]any{"subversion": "/" + strings.Repeat("u", 10000) + "/"},
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &req)
		_ = json.NewEncoder(w).Encode(map[string]any{"result": results[req.Method], "error": nil, "id": req.ID})
	}))
	t.Cleanup(server.Close)
	c := bitcoin.New(strings.TrimPrefix(server.URL, "http://"), "user", "password")

	a := askNode(context.Background(), c, "pod/0", answer{})
	g.Expect(a.err).NotTo(HaveOccurred())
	g.Expect(a.subversion).To(HaveLen(maxSubversion))
	g.Expect(a.chain.BestBlockHash).To(HaveLen(blockHashLength))
}

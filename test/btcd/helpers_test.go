package btcd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/bitcoinops/bitcoin-operator/test/loopback"
)

const testUser, testPassword = "harness", "s3cret-harness"

// podIPs returns count distinct addresses in a loopback range this test holds
// (loopback.Claim): ports 18443 and 18444 are fixed, so tests that run at
// the same time, in this process or another, must never share an IP.
func podIPs(t *testing.T, count int) []netip.Addr {
	t.Helper()
	r, err := loopback.Claim()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Release)
	ips := make([]netip.Addr, count)
	for i := range ips {
		ips[i] = r.Addr(byte(i/254), byte(i%254+1))
	}
	return ips
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// HaveCode matches a rawReply with an HTTP status and a JSON-RPC error code.
func HaveCode(status, code int) types.GomegaMatcher {
	return WithTransform(func(r rawReply) [2]int {
		var reply struct {
			Error *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		got := 0
		if json.Unmarshal([]byte(r.body), &reply) == nil && reply.Error != nil {
			got = reply.Error.Code
		}
		return [2]int{r.status, got}
	}, Equal([2]int{status, code}))
}

type rawReply struct {
	status int
	body   string
}

// rawCall posts body to the node's proxy with the harness credentials.
func rawCall(t *testing.T, n *Node, body string) rawReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+n.RPCAddr()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPassword)
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, readAll(resp))
	return rawReply{resp.StatusCode, b.String()}
}

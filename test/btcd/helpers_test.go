package btcd

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
)

const testUser, testPassword = "harness", "s3cret-harness"

// randomIPs returns count distinct addresses from 127.220.0.0 to 127.254.255.255:
// ports 18443 and 18444 are fixed, so parallel tests must not share IPs, and local
// control planes take their pod ranges below 127.220 (test/cluster).
func randomIPs(t *testing.T, count int) []netip.Addr {
	t.Helper()
	seen := map[netip.Addr]bool{}
	var ips []netip.Addr
	for len(ips) < count {
		b := [4]byte{127}
		for i, limit := range []int64{35, 256, 254} {
			v, err := rand.Int(rand.Reader, big.NewInt(limit))
			if err != nil {
				t.Fatal(err)
			}
			b[i+1] = byte(v.Int64())
		}
		b[1] += 220
		b[3]++
		if ip := netip.AddrFrom4(b); !seen[ip] {
			seen[ip] = true
			ips = append(ips, ip)
		}
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

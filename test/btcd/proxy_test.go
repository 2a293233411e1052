package btcd

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// Until btcd answers, the proxy answers as a bitcoind in warmup, so that the operator
// backs off as it would from a starting pod instead of seeing a dead one.
func TestProxyWarmup(t *testing.T) {
	g := NewWithT(t)
	upstream := loopbackAddr(cluster.FreePort()) // nothing listens there
	p := newProxy()
	addr := netip.AddrPortFrom(podIPs(t, 1)[0], RPCPort).String()
	g.Expect(p.listen(addr, upstream)).To(Succeed())
	defer p.close()
	c := bitcoin.New(addr, "u", "p")
	_, err := c.GetPeerInfo(context.Background())
	var rpcErr *bitcoin.RPCError
	g.Expect(errors.As(err, &rpcErr)).To(BeTrue(), "%v", err)
	g.Expect(rpcErr.Code).To(Equal(bitcoin.CodeInWarmup))
}

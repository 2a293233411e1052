// Package loopback hands out 127.N.0.0/16 ranges for fake pod IPs, each to one
// process of the machine at a time.
package loopback

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sync/atomic"
)

// Every harness that hands out pod IPs (a local control plane's kwok, the envtest
// suite's pods, the btcd tests) takes a 127.N.0.0/16 of its own from claimFirst to
// claimLast; fixed test addresses stay above claimLast.
//
// Ranges are claimed machine-wide, not just per process: test packages run in
// parallel (go test -p), and two control planes that drew the same random range (1
// in 200 for each pair) would give two pods the same IP, and a node its address
// held by another. A claim is a listener on the range's claimAddr: the kernel lets
// one process bind it, and frees it when that process exits, however it exits.
const (
	claimFirst = 20
	claimLast  = 219
	claimPort  = 47999
)

// Range is a 127.N.0.0/16 that this process holds until Release.
type Range struct {
	second   byte
	listener net.Listener
	subnets  atomic.Uint32
}

// Claim claims a free 127.N.0.0/16, trying the ranges in a random order.
func Claim() (*Range, error) {
	start, err := rand.Int(rand.Reader, big.NewInt(claimLast-claimFirst+1))
	if err != nil {
		return nil, err
	}
	for i := range int64(claimLast - claimFirst + 1) {
		second := byte(claimFirst + (start.Int64()+i)%(claimLast-claimFirst+1))
		l, err := net.Listen("tcp4", claimAddr(second))
		if err == nil {
			return &Range{second: second, listener: l}, nil
		}
	}
	return nil, errors.New("loopback: every loopback range from 127.20 to 127.219 is claimed by another process")
}

func claimAddr(second byte) string {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, second, 255, 253}), claimPort).String()
}

// CIDR is the range, as kwok's --cidr takes it.
func (r *Range) CIDR() string { return fmt.Sprintf("127.%d.0.0/16", r.second) }

// Addr returns 127.N.third.fourth.
func (r *Range) Addr(third, fourth byte) netip.Addr {
	return netip.AddrFrom4([4]byte{127, r.second, third, fourth})
}

// Subnet returns the next unused 127.N.x of the range, for a test that places its own
// pods; there are 255 (127.N.255 is left for the claim and kwok's node IP).
func (r *Range) Subnet() (string, error) {
	n := r.subnets.Add(1) - 1
	if n >= 255 {
		return "", fmt.Errorf("loopback: %s has no free /24 left", r.CIDR())
	}
	return fmt.Sprintf("127.%d.%d", r.second, n), nil
}

// Release gives the range back.
func (r *Range) Release() { _ = r.listener.Close() }

package loopback

import (
	"net"
	"testing"

	. "github.com/onsi/gomega"
)

func TestARangeIsClaimedOnce(t *testing.T) {
	g := NewWithT(t)
	a, err := Claim()
	g.Expect(err).NotTo(HaveOccurred())
	b, err := Claim()
	g.Expect(err).NotTo(HaveOccurred())
	defer b.Release()
	g.Expect(a.CIDR()).NotTo(Equal(b.CIDR()))

	// Another process trying a held range fails to bind its claim, as this does.
	_, err = net.Listen("tcp4", claimAddr(a.second))
	g.Expect(err).To(HaveOccurred(), "a held range cannot be claimed again")
	a.Release()
	l, err := net.Listen("tcp4", claimAddr(a.second))
	g.Expect(err).NotTo(HaveOccurred(), "a released range is free again")
	l.Close()
}

func TestSubnetsOfARangeAreDistinct(t *testing.T) {
	g := NewWithT(t)
	r, err := Claim()
	g.Expect(err).NotTo(HaveOccurred())
	defer r.Release()
	a, _ := r.Subnet()
	b, _ := r.Subnet()
	g.Expect(a).NotTo(Equal(b))
}

package bitcoin

import (
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	. "github.com/onsi/gomega"
)

// The example of BIP 380.
func TestDescriptorChecksum(t *testing.T) {
	g := NewWithT(t)
	for desc, want := range map[string]string{
		"raw(deadbeef)": "89f8spxm",
	} {
		sum, err := DescriptorChecksum(desc)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sum).To(Equal(want), desc)
	}
	_, err := DescriptorChecksum("raw(dé)")
	g.Expect(err).To(MatchError(ContainSubstring("outside the descriptor charset")))
}

func TestNewRegtestMiningKey(t *testing.T) {
	g := NewWithT(t)
	k, err := NewRegtestMiningKey()
	g.Expect(err).NotTo(HaveOccurred())

	wif, err := btcutil.DecodeWIF(k.WIF)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wif.IsForNet(&chaincfg.RegressionNetParams)).To(BeTrue(), "a regtest key")
	g.Expect(wif.CompressPubKey).To(BeTrue(), "P2WPKH needs a compressed key")

	addr, err := btcutil.DecodeAddress(k.Address, &chaincfg.RegressionNetParams)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(addr).To(BeAssignableToTypeOf(&btcutil.AddressWitnessPubKeyHash{}))
	g.Expect(k.Address).To(HavePrefix("bcrt1q"))
	g.Expect(addr.ScriptAddress()).To(Equal(btcutil.Hash160(wif.SerializePubKey())), "the address is the key's")

	body, sum, ok := strings.Cut(k.Descriptor, "#")
	g.Expect(ok).To(BeTrue())
	g.Expect(body).To(Equal("wpkh(" + k.WIF + ")"))
	want, err := DescriptorChecksum(body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sum).To(Equal(want))

	g.Expect(k.String()).NotTo(ContainSubstring(k.WIF), "prints without the private key")
}

package bitcoin

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// MiningKey is a regtest key the coinbase of mined blocks pays: its private key as
// WIF, its P2WPKH address, and a descriptor that Bitcoin Core's importdescriptors
// takes as it is, so that a test can spend the coins. It prints as its address only,
// so that no log line or error carries the private key by accident.
type MiningKey struct {
	WIF        string
	Address    string
	Descriptor string
}

func (k MiningKey) String() string { return "mining key of " + k.Address }

// NewRegtestMiningKey generates a key for regtest. The key pays only on regtest: its
// address and WIF carry regtest's prefixes, which other chains refuse.
func NewRegtestMiningKey() (MiningKey, error) {
	priv, err := btcec.NewPrivateKey()
	if err != nil {
		return MiningKey{}, fmt.Errorf("failed to generate a mining key: %w", err)
	}
	params := &chaincfg.RegressionNetParams
	wif, err := btcutil.NewWIF(priv, params, true)
	if err != nil {
		return MiningKey{}, fmt.Errorf("failed to encode the mining key: %w", err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(priv.PubKey().SerializeCompressed()), params)
	if err != nil {
		return MiningKey{}, fmt.Errorf("failed to derive the mining address: %w", err)
	}
	desc := "wpkh(" + wif.String() + ")"
	sum, err := DescriptorChecksum(desc)
	if err != nil {
		return MiningKey{}, err
	}
	return MiningKey{WIF: wif.String(), Address: addr.EncodeAddress(), Descriptor: desc + "#" + sum}, nil
}

// The character sets and generator of output descriptor checksums (BIP 380): the
// input characters in groups of 32, and the bech32 alphabet of the checksum.
const (
	descriptorInputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	descriptorChecksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

var descriptorGenerator = [5]uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd}

func descriptorPolymod(c uint64, v int) uint64 {
	top := c >> 35
	c = (c&0x7ffffffff)<<5 ^ uint64(v)
	for i, g := range descriptorGenerator {
		if top>>i&1 == 1 {
			c ^= g
		}
	}
	return c
}

// DescriptorChecksum returns the 8-character checksum of an output descriptor (BIP
// 380), which importdescriptors requires after a '#'.
func DescriptorChecksum(desc string) (string, error) {
	c, class, classes := uint64(1), 0, 0
	for _, ch := range desc {
		pos := strings.IndexRune(descriptorInputCharset, ch)
		if pos < 0 {
			return "", fmt.Errorf("descriptor has a character outside the descriptor charset: %q", ch)
		}
		c = descriptorPolymod(c, pos&31)
		class = class*3 + pos>>5
		if classes++; classes == 3 {
			c = descriptorPolymod(c, class)
			class, classes = 0, 0
		}
	}
	if classes > 0 {
		c = descriptorPolymod(c, class)
	}
	for range 8 {
		c = descriptorPolymod(c, 0)
	}
	c ^= 1
	sum := make([]byte, 8)
	for j := range sum {
		sum[j] = descriptorChecksumCharset[c>>(5*(7-j))&31]
	}
	return string(sum), nil
}

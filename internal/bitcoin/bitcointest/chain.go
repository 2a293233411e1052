package bitcointest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// The double's blocks are hashes only: a block is its hash, its place in a chain and,
// for mined ones, the address its coinbase pays (Network.coinbase). Chains meet as
// Core's do: a node takes a peer's chain when it has more blocks (all regtest blocks
// carry the same work), and keeps its own on a tie, the first it saw.

// blockHash makes up the hash of a block mined on prev, unique for each call: the
// counter keeps two nodes mining on one tip apart, as their timestamps and coinbases
// would in Core.
func blockHash(prev, address string, n int) string {
	sum := sha256.Sum256([]byte(prev + "/" + address + "/" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:])
}

// mine appends count blocks paying address to n's chain and relays them.
func (n *Node) mine(count int, address string) []string {
	nw := n.network
	if nw.coinbase == nil {
		nw.coinbase = map[string]string{}
	}
	hashes := make([]string, 0, count)
	for range count {
		nw.blocks++
		hash := blockHash(n.tip(), address, nw.blocks)
		n.chain = append(n.chain, hash)
		nw.coinbase[hash] = address
		hashes = append(hashes, hash)
	}
	nw.relay()
	return hashes
}

// relay spreads the longest chains over the links until every connected node has the
// longest chain within its reach, as block announcements and headers sync would.
func (nw *Network) relay() {
	for changed := true; changed; {
		changed = false
		for _, l := range nw.links {
			if adopt(l.to, l.from) || adopt(l.from, l.to) {
				changed = true
			}
		}
	}
}

// adopt moves n to peer's chain if it has more blocks, and tells whether it did. The
// chain it leaves stays known to it as a fork when its tip is not on the new one, as
// Core keeps the blocks of a chain it reorganized away from (getchaintips).
func adopt(n, peer *Node) bool {
	if len(peer.chain) <= len(n.chain) {
		return false
	}
	if !slices.Contains(peer.chain, n.tip()) {
		n.forks = append(n.forks, n.chain)
	}
	n.chain = slices.Clone(peer.chain)
	return true
}

// commonHeight is the height of the last block two chains share.
func commonHeight(a, b []string) int {
	h := 0
	for h+1 < min(len(a), len(b)) && a[h+1] == b[h+1] {
		h++
	}
	return h
}

// CoinbaseAddress returns the address the coinbase of the block hash pays, if the
// double mined it.
func (nw *Network) CoinbaseAddress(hash string) (string, bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	addr, ok := nw.coinbase[hash]
	return addr, ok
}

// regtestAddress is the shape of a regtest address: bech32 with the bcrt hrp, or
// base58 with regtest's version bytes. Core decodes it in full (DecodeDestination);
// the double checks the shape only.
var regtestAddress = regexp.MustCompile(`^(bcrt1[02-9ac-hj-np-z]{8,86}|[mn2][1-9A-HJ-NP-Za-km-z]{25,34})$`)

const generateUsage = `generatetoaddress nblocks "address" ( maxtries )`

// generatetoaddress follows generatetoaddress in src/rpc/mining.cpp: the address is
// decoded first, and the blocks go to the node's chain at once.
func (n *Node) generatetoaddress(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 2, 3, generateUsage); err != nil {
		return nil, err
	}
	var count int
	if err := json.Unmarshal(params[0], &count); err != nil {
		return nil, &rpcError{rpcTypeError, fmt.Sprintf("JSON value %s for field nblocks is not of expected type number", params[0])}
	}
	address, err := stringParam(params[1], "address")
	if err != nil {
		return nil, err
	}
	if !regtestAddress.MatchString(address) {
		return nil, &rpcError{rpcInvalidAddressOrKey, "Error: Invalid address"}
	}
	return n.mine(max(count, 0), address), nil
}

// getblockhash follows getblockhash in src/rpc/blockchain.cpp.
func (n *Node) getblockhash(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 1, 1, "getblockhash height"); err != nil {
		return nil, err
	}
	var height int
	if err := json.Unmarshal(params[0], &height); err != nil {
		return nil, &rpcError{rpcTypeError, fmt.Sprintf("JSON value %s for field height is not of expected type number", params[0])}
	}
	if height < 0 || height > n.height() {
		return nil, &rpcError{rpcInvalidParameter, "Block height out of range"}
	}
	return n.chain[height], nil
}

// getbestblockhash follows getbestblockhash in src/rpc/blockchain.cpp.
func (n *Node) getbestblockhash(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 0, "getbestblockhash"); err != nil {
		return nil, err
	}
	return n.tip(), nil
}

type chainTip struct {
	Height    int    `json:"height"`
	Hash      string `json:"hash"`
	BranchLen int    `json:"branchlen"`
	Status    string `json:"status"`
}

// getchaintips follows getchaintips in src/rpc/blockchain.cpp: the active tip, and the
// tip of each known chain off it, with the length of its branch from the fork point.
// The double's forks were all fully validated once, so they are "valid-fork".
func (n *Node) getchaintips(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 0, "getchaintips"); err != nil {
		return nil, err
	}
	tips := []chainTip{{Height: n.height(), Hash: n.tip(), BranchLen: 0, Status: "active"}}
	for _, fork := range n.forks {
		branch := len(fork) - 1 - commonHeight(fork, n.chain)
		if branch > 0 {
			tips = append(tips, chainTip{Height: len(fork) - 1, Hash: fork[len(fork)-1], BranchLen: branch, Status: "valid-fork"})
		}
	}
	return tips, nil
}

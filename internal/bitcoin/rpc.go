package bitcoin

import "context"

// AddNodeCommand is the command argument of addnode.
type AddNodeCommand string

const (
	AddNodeAdd    AddNodeCommand = "add"
	AddNodeRemove AddNodeCommand = "remove"
	AddNodeOneTry AddNodeCommand = "onetry"
)

// Values of Peer.ConnectionType (CONNECTION_TYPE_DOC in src/rpc/net.cpp).
const (
	ConnectionTypeInbound = "inbound"
	// ConnectionTypeManual is a connection opened by addnode or -connect.
	ConnectionTypeManual = "manual"
)

// AddedNode is an entry of getaddednodeinfo.
type AddedNode struct {
	AddedNode string             `json:"addednode"`
	Connected bool               `json:"connected"`
	Addresses []AddedNodeAddress `json:"addresses"`
}

// AddedNodeAddress is the connection to an added node, listed only when
// connected.
type AddedNodeAddress struct {
	Address string `json:"address"`
	// Connected is "inbound" or "outbound".
	Connected string `json:"connected"`
}

// Peer is an entry of getpeerinfo.
type Peer struct {
	ID int64 `json:"id"`
	// Addr of an inbound peer is the ip:port its connection came from, not
	// the port it listens on.
	Addr           string `json:"addr"`
	Inbound        bool   `json:"inbound"`
	ConnectionType string `json:"connection_type"`
	SyncedBlocks   int64  `json:"synced_blocks"`
}

// NetworkInfo is the part of getnetworkinfo the operator reads.
type NetworkInfo struct {
	Version        int    `json:"version"`
	Subversion     string `json:"subversion"`
	Connections    int    `json:"connections"`
	ConnectionsIn  int    `json:"connections_in"`
	ConnectionsOut int    `json:"connections_out"`
	NetworkActive  bool   `json:"networkactive"`
}

// BlockchainInfo is the part of getblockchaininfo the operator reads.
type BlockchainInfo struct {
	Chain                string `json:"chain"`
	Blocks               int64  `json:"blocks"`
	Headers              int64  `json:"headers"`
	BestBlockHash        string `json:"bestblockhash"`
	InitialBlockDownload bool   `json:"initialblockdownload"`
}

// AddNode adds node ("ip:port") to the added-node list, removes it, or tries
// one connection to it. Adding a node already added and removing one not
// added succeed, so that callers can converge without reading the list first.
//
// Removing a node does not close its connection: Bitcoin Core only drops the
// entry (CConnman::RemoveAddedNode), so follow with DisconnectNode.
func (c *Client) AddNode(ctx context.Context, node string, cmd AddNodeCommand) error {
	err := c.call(ctx, "addnode", []any{node, cmd}, nil)
	if cmd == AddNodeAdd && hasCode(err, CodeNodeAlreadyAdded) ||
		cmd == AddNodeRemove && hasCode(err, CodeNodeNotAdded) {
		return nil
	}
	return err
}

// DisconnectNode closes the connection whose getpeerinfo addr is address.
// A node that is not connected is the state the caller wants: it succeeds.
func (c *Client) DisconnectNode(ctx context.Context, address string) error {
	err := c.call(ctx, "disconnectnode", []any{address}, nil)
	if hasCode(err, CodeNodeNotConnected) {
		return nil
	}
	return err
}

// GetAddedNodeInfo lists the added nodes (not onetry ones).
func (c *Client) GetAddedNodeInfo(ctx context.Context) ([]AddedNode, error) {
	// No params: the leading dns flag of old releases is gone, and Core now
	// reads a first param as a node to filter by.
	var nodes []AddedNode
	if err := c.call(ctx, "getaddednodeinfo", []any{}, &nodes); err != nil {
		return nil, err
	}
	return nodes, nil
}

// GetPeerInfo lists the connected peers, inbound and outbound.
func (c *Client) GetPeerInfo(ctx context.Context) ([]Peer, error) {
	var peers []Peer
	if err := c.call(ctx, "getpeerinfo", []any{}, &peers); err != nil {
		return nil, err
	}
	return peers, nil
}

// GetNetworkInfo returns the P2P state.
func (c *Client) GetNetworkInfo(ctx context.Context) (NetworkInfo, error) {
	var info NetworkInfo
	if err := c.call(ctx, "getnetworkinfo", []any{}, &info); err != nil {
		return NetworkInfo{}, err
	}
	return info, nil
}

// GetBlockchainInfo returns the chain state.
func (c *Client) GetBlockchainInfo(ctx context.Context) (BlockchainInfo, error) {
	var info BlockchainInfo
	if err := c.call(ctx, "getblockchaininfo", []any{}, &info); err != nil {
		return BlockchainInfo{}, err
	}
	return info, nil
}

// GenerateToAddress mines blocks to address at once (regtest) and returns their
// hashes. Bitcoin Core needs no wallet for it.
func (c *Client) GenerateToAddress(ctx context.Context, blocks int, address string) ([]string, error) {
	var hashes []string
	if err := c.call(ctx, "generatetoaddress", []any{blocks, address}, &hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

// GetBlockHash returns the hash of the block at height on the best chain.
func (c *Client) GetBlockHash(ctx context.Context, height int64) (string, error) {
	var hash string
	if err := c.call(ctx, "getblockhash", []any{height}, &hash); err != nil {
		return "", err
	}
	return hash, nil
}

// GetBestBlockHash returns the hash of the best chain's tip.
func (c *Client) GetBestBlockHash(ctx context.Context) (string, error) {
	var hash string
	if err := c.call(ctx, "getbestblockhash", []any{}, &hash); err != nil {
		return "", err
	}
	return hash, nil
}

// ChainTip is an entry of getchaintips.
type ChainTip struct {
	Height int64  `json:"height"`
	Hash   string `json:"hash"`
	// BranchLen is the number of blocks from the fork point with the active chain to
	// this tip; 0 for the active tip.
	BranchLen int64  `json:"branchlen"`
	Status    string `json:"status"`
}

// GetChainTips lists the tips of the chains the node knows: the active one and the
// forks it left or never took.
func (c *Client) GetChainTips(ctx context.Context) ([]ChainTip, error) {
	var tips []ChainTip
	if err := c.call(ctx, "getchaintips", []any{}, &tips); err != nil {
		return nil, err
	}
	return tips, nil
}

// Ban is an entry of listbanned.
type Ban struct {
	// Address is a subnet: "<ip>/32" for one IPv4 address.
	Address       string `json:"address"`
	TimeRemaining int64  `json:"time_remaining"`
}

// SetBan bans an IP for seconds (bitcoind refuses its connections and closes those
// open) or, with remove, lifts the ban. Banning an address already banned and
// lifting a ban that is not there fail (-23, -30): Core has no renewal, so renew by
// removing first.
func (c *Client) SetBan(ctx context.Context, ip string, remove bool, seconds int64) error {
	if remove {
		return c.call(ctx, "setban", []any{ip, "remove"}, nil)
	}
	return c.call(ctx, "setban", []any{ip, "add", seconds}, nil)
}

// ListBanned lists the bans in force.
func (c *Client) ListBanned(ctx context.Context) ([]Ban, error) {
	var bans []Ban
	if err := c.call(ctx, "listbanned", []any{}, &bans); err != nil {
		return nil, err
	}
	return bans, nil
}

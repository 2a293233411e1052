package bitcointest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Bans follow Bitcoin Core's BanMan (src/banman.cpp) for single IPs: a ban has an
// end, is listed by listbanned until then, and refuses inbound connections from the
// address (CConnman::CreateNodeFromAcceptedSocket drops them). Like Core, a ban does
// not stop the node itself dialing an address given by addnode (OpenNetworkConnection
// checks bans only for addresses it picked itself): it takes bans on both sides to
// keep two nodes apart.

const (
	rpcClientInvalidIPOrSubnet = -30
	// defaultBanTime is Core's DEFAULT_MISBEHAVING_BANTIME, used for bantime 0.
	defaultBanTime = 24 * time.Hour
)

// banned tells whether n refuses connections from addr now.
func (n *Node) banned(addr netip.Addr) bool {
	until, ok := n.bans[addr]
	return ok && time.Now().Before(until)
}

// expireBans drops the bans that have ended, as BanMan::SweepBanned does.
func (n *Node) expireBans() {
	for addr, until := range n.bans {
		if !time.Now().Before(until) {
			delete(n.bans, addr)
		}
	}
}

// banAddr parses setban's subnet argument: an IP, or an IP with a /32 or /128 mask
// (the double models single addresses only).
func banAddr(s string) (netip.Addr, bool) {
	ip, mask, hasMask := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(ip)
	if err != nil || hasMask && mask != fmt.Sprint(addr.BitLen()) {
		return netip.Addr{}, false
	}
	return addr, true
}

const setbanUsage = `setban "subnet" "command" ( bantime absolute )`

// setban follows setban in src/rpc/net.cpp: add bans the address for bantime seconds
// (0: the default) or until the absolute time, and disconnects it; remove lifts a ban.
func (n *Node) setban(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 2, 4, setbanUsage); err != nil {
		return nil, err
	}
	subnet, err := stringParam(params[0], "subnet")
	if err != nil {
		return nil, err
	}
	command, err := stringParam(params[1], "command")
	if err != nil {
		return nil, err
	}
	addr, ok := banAddr(subnet)
	if !ok {
		return nil, &rpcError{rpcClientInvalidIPOrSubnet, "Error: Invalid IP/Subnet"}
	}
	n.expireBans()
	switch command {
	case "add":
		if n.banned(addr) {
			return nil, &rpcError{rpcClientNodeAlreadyAdded, "Error: IP/Subnet already banned"}
		}
		var seconds int64
		if len(params) > 2 {
			if err := json.Unmarshal(params[2], &seconds); err != nil {
				return nil, &rpcError{rpcTypeError, fmt.Sprintf("JSON value %s for field bantime is not of expected type number", params[2])}
			}
		}
		var absolute bool
		if len(params) > 3 {
			_ = json.Unmarshal(params[3], &absolute)
		}
		until := time.Now().Add(defaultBanTime)
		switch {
		case absolute:
			until = time.Unix(seconds, 0)
		case seconds > 0:
			until = time.Now().Add(time.Duration(seconds) * time.Second)
		}
		if n.bans == nil {
			n.bans = map[netip.Addr]time.Time{}
		}
		n.bans[addr] = until
		n.network.drop(func(l *link) bool {
			return l.from == n && l.to.p2p.Addr() == addr || l.to == n && l.from.p2p.Addr() == addr
		})
	case "remove":
		if !n.banned(addr) {
			return nil, &rpcError{rpcClientInvalidIPOrSubnet, "Error: Unban failed. Requested address/subnet was not previously manually banned."}
		}
		delete(n.bans, addr)
		n.network.reconcile()
	default:
		return nil, &rpcError{rpcMiscError, setbanUsage}
	}
	return nil, nil
}

type bannedEntry struct {
	Address       string `json:"address"`
	BanCreated    int64  `json:"ban_created"`
	BannedUntil   int64  `json:"banned_until"`
	BanDuration   int64  `json:"ban_duration"`
	TimeRemaining int64  `json:"time_remaining"`
}

// listbanned follows listbanned in src/rpc/net.cpp: each ban as a subnet with a full
// mask, in address order.
func (n *Node) listbanned(params []json.RawMessage) (any, *rpcError) {
	if err := arity(params, 0, 0, "listbanned"); err != nil {
		return nil, err
	}
	n.expireBans()
	addrs := make([]netip.Addr, 0, len(n.bans))
	for a := range n.bans {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	out := []bannedEntry{}
	now := time.Now().Unix()
	for _, a := range addrs {
		until := n.bans[a].Unix()
		out = append(out, bannedEntry{Address: fmt.Sprintf("%s/%d", a, a.BitLen()), BannedUntil: until, TimeRemaining: until - now})
	}
	return out, nil
}

// Bans returns the addresses n bans now, as listbanned shows them.
func (n *Node) Bans() []string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	n.expireBans()
	var out []string
	for a := range n.bans {
		out = append(out, fmt.Sprintf("%s/%d", a, a.BitLen()))
	}
	slices.Sort(out)
	return out
}

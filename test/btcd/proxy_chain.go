package btcd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// Translations for chain control (Bitcoin Core v28.0's src/rpc/mining.cpp and
// src/rpc/net.cpp; btcd v0.25.0's rpcserver.go):
//
//   - generatetoaddress: btcd has no such call; its `generate` (handleGenerate) mines
//     to the addresses of its --miningaddr only. The proxy translates a call for
//     MiningAddress into `generate` and refuses any other address with Core's -5:
//     btcd cannot pay it. So a network mined through the proxy names MiningAddress in
//     spec.mining.address.
//   - setban and listbanned: btcd has neither (its bans are automatic, for
//     misbehaviour, and off here with --nobanning). On loopback btcd sees every peer
//     as 127.0.0.1, so a ban of one pod IP could not be told from a ban of all. The
//     proxy keeps Core's ban list for the operator to read and change (BanMan's
//     errors: -23 for a ban already there, -30 for lifting one that is not), and
//     enforces nothing: on btcd a partition holds only because the operator adds no
//     entry across groups and btcd's address manager has no routable address on
//     loopback to dial by itself. The list survives a restart, as banlist.json does.
//   - getblockhash, getbestblockhash and getchaintips pass through: btcd answers them
//     as Core does.

// banned is the proxy's ban list: address to end.
type banned map[netip.Addr]time.Time

func (p *proxy) generateToAddress(ctx context.Context, auth string, params []json.RawMessage) (any, *rpcError, error) {
	if len(params) < 2 || len(params) > 3 {
		return nil, &rpcError{bitcoin.CodeMiscError, `generatetoaddress nblocks "address" ( maxtries )`}, nil
	}
	var count int
	if err := json.Unmarshal(params[0], &count); err != nil {
		return nil, &rpcError{codeTypeError, "JSON value for field nblocks is not of expected type number"}, nil
	}
	address, ok, rerr := stringParam(params, 1)
	if rerr != nil || !ok {
		return nil, &rpcError{codeTypeError, "JSON value for field address is not of expected type string"}, nil
	}
	if address != MiningAddress {
		return nil, &rpcError{bitcoin.CodeInvalidAddress, fmt.Sprintf("Error: Invalid address (btcd behind this proxy pays only its --miningaddr %s)", MiningAddress)}, nil
	}
	return p.btcd(ctx, auth, "generate", count)
}

// authorized checks the caller's credentials with btcd, for the calls the proxy
// answers itself.
func (p *proxy) authorized(ctx context.Context, auth string) (*rpcError, error) {
	_, rerr, err := p.btcd(ctx, auth, "getblockcount")
	return rerr, err
}

func (p *proxy) setBan(ctx context.Context, auth string, params []json.RawMessage) (any, *rpcError, error) {
	if rerr, err := p.authorized(ctx, auth); rerr != nil || err != nil {
		return nil, rerr, err
	}
	if len(params) < 2 || len(params) > 4 {
		return nil, &rpcError{bitcoin.CodeMiscError, `setban "subnet" "command" ( bantime absolute )`}, nil
	}
	subnet, _, rerr := stringParam(params, 0)
	command, _, rerr2 := stringParam(params, 1)
	if rerr != nil || rerr2 != nil {
		return nil, &rpcError{codeTypeError, "setban takes strings for subnet and command"}, nil
	}
	ip, mask, hasMask := strings.Cut(subnet, "/")
	addr, err := netip.ParseAddr(ip)
	if err != nil || hasMask && mask != fmt.Sprint(addr.BitLen()) {
		return nil, &rpcError{bitcoin.CodeInvalidIPOrSubnet, "Error: Invalid IP/Subnet"}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bans.sweep()
	switch command {
	case "add":
		if _, ok := p.bans[addr]; ok {
			return nil, &rpcError{bitcoin.CodeNodeAlreadyAdded, "Error: IP/Subnet already banned"}, nil
		}
		seconds := int64(24 * 60 * 60) // Core's DEFAULT_MISBEHAVING_BANTIME
		if len(params) > 2 {
			var s int64
			if json.Unmarshal(params[2], &s) == nil && s > 0 {
				seconds = s
			}
		}
		if p.bans == nil {
			p.bans = banned{}
		}
		p.bans[addr] = time.Now().Add(time.Duration(seconds) * time.Second)
	case "remove":
		if _, ok := p.bans[addr]; !ok {
			return nil, &rpcError{bitcoin.CodeInvalidIPOrSubnet, "Error: Unban failed. Requested address/subnet was not previously manually banned."}, nil
		}
		delete(p.bans, addr)
	default:
		return nil, &rpcError{bitcoin.CodeMiscError, `setban "subnet" "command" ( bantime absolute )`}, nil
	}
	return nil, nil, nil
}

func (p *proxy) listBanned(ctx context.Context, auth string) (any, *rpcError, error) {
	if rerr, err := p.authorized(ctx, auth); rerr != nil || err != nil {
		return nil, rerr, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bans.sweep()
	addrs := make([]netip.Addr, 0, len(p.bans))
	for a := range p.bans {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	out := []map[string]any{}
	for _, a := range addrs {
		until := p.bans[a].Unix()
		out = append(out, map[string]any{"address": fmt.Sprintf("%s/%d", a, a.BitLen()), "banned_until": until, "time_remaining": until - time.Now().Unix()})
	}
	return out, nil, nil
}

// sweep drops the bans that ended, as BanMan::SweepBanned.
func (b banned) sweep() {
	for a, until := range b {
		if !time.Now().Before(until) {
			delete(b, a)
		}
	}
}

// Package bitcointest is an in-process test double of Bitcoin Core 28's RPC
// server for the calls the operator makes: addnode, disconnectnode,
// getaddednodeinfo, getpeerinfo, getnetworkinfo, getblockchaininfo,
// generatetoaddress, getblockhash, getbestblockhash, getchaintips, setban
// and listbanned (bans.go). Blocks are relayed
// between linked nodes and the longest chain wins, so doubles reorganize as
// Core does when two sides that mined apart meet (chain.go).
//
// Each Node serves real HTTP on its own address, so tests exercise the real
// client. P2P connections are not real sockets: they are links recorded in
// the Network the nodes share, formed by the rules of Bitcoin Core's CConnman
// (src/net.cpp): an added node is connected unless the node already holds
// MAX_ADDNODE_CONNECTIONS addnode connections, and removing it from the list
// does not close its connection. Core retries unconnected added nodes every
// 2 to 60 seconds; the double connects at once, so tests need not wait.
package bitcointest

import (
	"net/netip"
	"slices"
	"sync"
)

// maxAddnodeConnections is MAX_ADDNODE_CONNECTIONS in Bitcoin Core's
// src/net.h: "Maximum number of addnode outgoing nodes".
const maxAddnodeConnections = 8

// Network is the P2P world shared by nodes: which node listens on which P2P
// address and which connections exist. The zero value is ready to use.
type Network struct {
	// mu guards the Network and the state of all its nodes.
	mu    sync.Mutex
	nodes map[netip.AddrPort]*Node
	links []*link
	ports uint32
	// blocks counts the blocks mined; coinbase is the address each one pays.
	blocks   int
	coinbase map[string]string
}

// link is a P2P connection, outbound from its initiator and inbound to its
// target.
type link struct {
	from, to     *Node
	fromID, toID int
	// dest is the address string the initiator dialled: its getpeerinfo addr.
	dest string
	// source is the initiator's end of the socket: the target's getpeerinfo addr.
	source netip.AddrPort
	// addnode marks a connection holding one of the initiator's
	// maxAddnodeConnections slots; onetry connections hold none.
	addnode bool
}

// Connected reports whether the running nodes form one connected graph.
func (nw *Network) Connected() bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	running := nw.running()
	if len(running) == 0 {
		return true
	}
	seen := map[*Node]bool{running[0]: true}
	queue := running[:1:1]
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, l := range nw.links {
			next := l.from
			if l.from == n {
				next = l.to
			} else if l.to != n {
				continue
			}
			if !seen[next] {
				seen[next] = true
				queue = append(queue, next)
			}
		}
	}
	return len(seen) == len(running)
}

// Linked reports whether a connection, in either direction, joins the nodes
// listening on the P2P addresses a and b.
func (nw *Network) Linked(a, b string) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return slices.ContainsFunc(nw.links, func(l *link) bool {
		from, to := l.from.p2p.String(), l.to.p2p.String()
		return from == a && to == b || from == b && to == a
	})
}

// running returns the running nodes in P2P address order, so that peer ids
// do not depend on map order.
func (nw *Network) running() []*Node {
	var nodes []*Node
	for _, n := range nw.nodes {
		if n.running {
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b *Node) int { return a.p2p.Compare(b.p2p) })
	return nodes
}

// reconcile opens the connections Bitcoin Core's ThreadOpenAddedConnections
// would: each node dials its unconnected added nodes in list order while it
// has a free addnode slot. A dial that fails costs no slot.
func (nw *Network) reconcile() {
	for _, n := range nw.running() {
		nw.reconcileNode(n)
	}
}

// reconcileNode dials n's unconnected added nodes while it has a free addnode slot:
// all a new entry of n's can change, so that a network of 1,000 doubles does not
// walk every node's list for every addnode call.
func (nw *Network) reconcileNode(n *Node) {
	for _, dest := range n.added {
		if nw.outbound(n, dest) != nil {
			continue
		}
		if nw.addnodeConnections(n) >= maxAddnodeConnections {
			break
		}
		nw.connect(n, dest, true)
	}
}

// connect opens a connection from n to the running node listening on dest,
// unless there is none or n is already connected to it. Core also dials its
// own address, but drops the connection when it sees its own nonce.
func (nw *Network) connect(n *Node, dest string, addnode bool) {
	to := nw.target(dest)
	if to == nil || to == n || nw.outbound(n, dest) != nil || to.banned(n.p2p.Addr()) {
		return
	}
	nw.ports++
	// Ephemeral ports as Linux hands them out, so that an inbound peer's addr
	// never looks like a P2P address.
	port := uint16(32768 + nw.ports%28232)
	nw.links = append(nw.links, &link{
		from: n, to: to, fromID: n.newPeerID(), toID: to.newPeerID(),
		dest: dest, source: netip.AddrPortFrom(n.p2p.Addr(), port), addnode: addnode,
	})
	nw.relay()
}

// target returns the running node listening on dest, if any.
func (nw *Network) target(dest string) *Node {
	addr, err := netip.ParseAddrPort(dest)
	if err != nil {
		return nil
	}
	if n := nw.nodes[addr]; n != nil && n.running {
		return n
	}
	return nil
}

// outbound returns n's outbound connection to dest. Core's GetAddedNodeInfo
// matches connections by their peer's ip:port, which for an inbound one is
// an ephemeral port: only outbound connections can match an added node.
func (nw *Network) outbound(n *Node, dest string) *link {
	addr, err := netip.ParseAddrPort(dest)
	if err != nil {
		return nil
	}
	for _, l := range nw.links {
		if l.from == n && l.to.p2p == addr {
			return l
		}
	}
	return nil
}

func (nw *Network) addnodeConnections(n *Node) int {
	count := 0
	for _, l := range nw.links {
		if l.from == n && l.addnode {
			count++
		}
	}
	return count
}

// drop closes the connections for which match is true and lets added nodes
// take the slots they free, as Core's next ThreadOpenAddedConnections pass would.
func (nw *Network) drop(match func(*link) bool) {
	nw.links = slices.DeleteFunc(nw.links, match)
	nw.reconcile()
}

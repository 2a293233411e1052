// Package controller holds the operator's reconcilers. Each works on one BitcoinNetwork
// at a time and owns its own part of the network's status (status_writer.go):
//
//   - the network reconciler (network_*.go) applies what the chart renders for the
//     network's spec and credentials, and owns Degraded and observedGeneration;
//   - the status reconciler (status_*.go) reports the nodes from their pods, and owns
//     status.nodes and Available;
//   - the peer reconciler (peer_*.go) asks the nodes over RPC, wires them into one
//     Bitcoin network, and owns Connected and Synced;
//   - under OLM, the upgradeable reconciler holds operator upgrades while networks roll.
//
// What the peer reconciler learns reaches the reconcilers that own the fields it shows
// up in through observations.go. Memory kept per network lives in a networkMemory
// (network_memory.go), which forgets a network when it is gone.
//
// Files without a reconciler's prefix serve several: credentials.go, cache.go,
// indexes.go, owner.go and conditions.go. setup.go wires them all into a manager.
package controller

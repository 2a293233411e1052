package controller

import (
	"fmt"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// reasonTooManyNodes is Degraded's reason for a network above the operator's cap.
const reasonTooManyNodes = "TooManyNodes"

// tooManyNodes is why a network's objects were not applied: spec.nodes exceeds the
// nodes per network the cluster's administrator allows (--max-nodes-per-network).
// A tenant's network of 1,000 nodes asks for that many pods, volumes and their CPU
// and memory; the cap keeps that decision with the administrator.
type tooManyNodes struct {
	nodes, limit int32
}

func (e *tooManyNodes) Error() string {
	return fmt.Sprintf("spec.nodes is %d, above the %d nodes per network this operator allows (its --max-nodes-per-network): "+
		"the network's objects stay as they are until spec.nodes is at most %d", e.nodes, e.limit, e.limit)
}

// checkNodeCap refuses a network whose spec.nodes exceeds limit; 0 means no cap
// beyond the API's own maximum. Nothing of such a network is applied: growing its
// StatefulSet only to the cap would run nodes nobody asked for under that spec, and
// applying the rest of the spec without its nodes would be half of what was asked.
func checkNodeCap(network *bitcoinv1alpha1.BitcoinNetwork, limit int32) error {
	if limit > 0 && network.Spec.Nodes > limit {
		return &tooManyNodes{nodes: network.Spec.Nodes, limit: limit}
	}
	return nil
}

package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// Blocks mined by interval move status.mining.height once a period, not per block.
func TestThrottledMiningHeight(t *testing.T) {
	g := NewWithT(t)
	r := &PeerReconciler{Period: time.Minute}
	network := &bitcoinv1alpha1.BitcoinNetwork{Status: bitcoinv1alpha1.BitcoinNetworkStatus{
		Mining: &bitcoinv1alpha1.BitcoinNetworkMiningStatus{Address: "bcrt1qa", Height: ptr.To[int64](101)}}}
	next := &bitcoinv1alpha1.BitcoinNetworkMiningStatus{Address: "bcrt1qa", Height: ptr.To[int64](104)}

	recent := &roundState{miningWrittenAt: time.Now().Add(-10 * time.Second)}
	g.Expect(r.throttledMining(network, recent, next).Height).To(HaveValue(BeEquivalentTo(101)), "written 10 s ago: kept")

	old := &roundState{miningWrittenAt: time.Now().Add(-2 * time.Minute)}
	g.Expect(r.throttledMining(network, old, next).Height).To(HaveValue(BeEquivalentTo(104)), "a period later: refreshed")

	moved := &bitcoinv1alpha1.BitcoinNetworkMiningStatus{Address: "bcrt1qb", Height: ptr.To[int64](104)}
	g.Expect(r.throttledMining(network, recent, moved)).To(Equal(moved), "a new address shows at once")
	g.Expect(r.throttledMining(network, recent, nil)).To(BeNil(), "mining removed shows at once")
}

package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
)

// A network coming up node by node is one PeerAdded and one PeerRemoved event, once
// every node is ready.
func TestAdditionsWhileComingUpAreOneEvent(t *testing.T) {
	g := NewWithT(t)
	recorder := record.NewFakeRecorder(10)
	r := &PeerReconciler{Recorder: recorder}
	network := testNetwork("n", "uid-n")
	network.Spec.Nodes = 3
	node := func(name string) readyNode {
		n := readyNode{p2p: name + ":18444"}
		n.NodeName = name
		return n
	}
	var held heldRewiring
	round := func(ready int, to, peer string, removedToo bool) {
		var added, removed rewiring
		added.record(node(to), []string{peer + ":18444"})
		if removedToo {
			removed.record(node(to), []string{"127.0.0.9:18444"})
		}
		r.announceRewiring(network, ready, added, removed, &held)
	}

	round(2, "n-sts-1", "127.0.0.1", true)
	g.Expect(recorder.Events).To(BeEmpty(), "1 of 3 nodes still to come")
	round(3, "n-sts-2", "127.0.0.2", false)
	g.Expect(recorder.Events).To(Receive(Equal("Normal PeerAdded Added 2 addnode entries; n-sts-1: 127.0.0.1:18444; n-sts-2: 127.0.0.2:18444")))
	g.Expect(recorder.Events).To(Receive(Equal("Normal PeerRemoved Removed 1 addnode entry; n-sts-1: 127.0.0.9:18444")))

	round(3, "n-sts-0", "127.0.0.3", false)
	g.Expect(recorder.Events).To(Receive(HavePrefix("Normal PeerAdded Added 1 addnode entry; n-sts-0")),
		"once up, each round's additions are an event")
	r.announceRewiring(network, 3, rewiring{}, rewiring{}, &held)
	g.Expect(recorder.Events).To(BeEmpty(), "no changes, no event")
}

// A settled network is asked once a period: Partitioned False because no split is
// asked for is settled, not a network still apart.
func TestASettledNetworkIsAskedOncePerPeriod(t *testing.T) {
	g := NewWithT(t)
	r := &PeerReconciler{Period: 30 * time.Second}
	settled := []metav1.Condition{
		{Type: bitcoinv1alpha1.ConditionConnected, Status: metav1.ConditionTrue, Reason: "Connected"},
		{Type: bitcoinv1alpha1.ConditionSynced, Status: metav1.ConditionTrue, Reason: "Synced"},
		{Type: bitcoinv1alpha1.ConditionPartitioned, Status: metav1.ConditionFalse, Reason: reasonNotRequested},
	}
	next := r.nextRound(&peerRound{}, &roundState{}, settled...)
	g.Expect(next).To(BeNumerically(">=", 27*time.Second), "about one period, with jitter")

	apart := slices.Clone(settled)
	apart[1].Status, apart[1].Reason = metav1.ConditionFalse, "BestBlocksDiffer"
	g.Expect(r.nextRound(&peerRound{}, &roundState{}, apart...)).To(Equal(settleWhileApart))
}

// A recheck the round's end cuts short keeps what the node answered before.
func TestARecheckCutShortKeepsTheAnswer(t *testing.T) {
	g := NewWithT(t)
	r := &PeerReconciler{rounds: newPeerRounds()}
	n := readyNode{pod: "pod-0"}
	n.Ordinal = 0
	known := []bitcoin.Peer{{Addr: "127.0.0.2:18444"}}
	answers := map[int32]answer{0: {peers: known}}
	links := map[types.UID]*rpcLink{"pod-0": {client: bitcoin.New("127.0.0.1:1", "u", "p")}}
	// Every call slot taken and the round over: the call cannot run.
	for range cap(r.rounds.calls) {
		r.rounds.calls <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.recheckPeers(ctx, []readyNode{n}, answers, links, []int32{0})
	g.Expect(answers[0].peers).To(Equal(known))
}

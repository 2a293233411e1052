package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func TestStatusWriterTrustsItsRecentWritesOverTransitionTimes(t *testing.T) {
	g := NewWithT(t)
	w := newStatusWriter(nil, networkStatusOwner, &statusPacer{})
	status := func(reason string, at time.Time) networkStatus {
		return networkStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
			{Type: "Degraded", Status: metav1.ConditionFalse, Reason: reason, LastTransitionTime: metav1.NewTime(at)},
		}}
	}
	a := testNetwork("a", "uid-a")
	g.Expect(w.justWrote(a, status("Reconciled", time.Now()))).To(BeFalse())

	w.recent.store(a, recentWrite{status: statusKey(status("Reconciled", time.Now())), at: time.Now()})
	g.Expect(w.justWrote(a, status("Reconciled", time.Now().Add(time.Minute)))).To(BeTrue(),
		"a stale cache makes the same condition with a new transition time")
	g.Expect(w.justWrote(a, status("ApplyFailed", time.Now()))).To(BeFalse())
	g.Expect(w.justWrote(testNetwork("b", "uid-b"), status("Reconciled", time.Now()))).To(BeFalse(), "another network")
	g.Expect(w.justWrote(testNetwork("a", "uid-a2"), status("Reconciled", time.Now()))).To(BeFalse(), "the same name recreated")

	w.recent.store(a, recentWrite{status: statusKey(status("Reconciled", time.Now())), at: time.Now().Add(-recentWriteTTL)})
	g.Expect(w.justWrote(a, status("Reconciled", time.Now()))).To(BeFalse(), "an old write is not trusted over the cache")
}

func testNetwork(name, uid string) *bitcoinv1alpha1.BitcoinNetwork {
	return &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}
}

func TestStatusPacerSpacesANetworksWrites(t *testing.T) {
	g := NewWithT(t)
	p := &statusPacer{}
	a, b := testNetwork("a", "uid-a"), testNetwork("b", "uid-b")
	now := time.Now()
	g.Expect(p.wait(a, now)).To(BeZero(), "never written")
	p.wrote(a, now)
	g.Expect(p.wait(a, now.Add(100*time.Millisecond))).To(Equal(statusWriteGap - 100*time.Millisecond))
	g.Expect(p.wait(a, now.Add(statusWriteGap))).To(BeZero())
	g.Expect(p.wait(b, now)).To(BeZero(), "another network")
	g.Expect(p.wait(testNetwork("a", "uid-a2"), now)).To(BeZero(), "the same name recreated")
}

// fakeStatus is an ownedStatus whose change may wait Hold.
type fakeStatus struct {
	Hold time.Duration `json:"hold"`
}

func (fakeStatus) changedFrom(*bitcoinv1alpha1.BitcoinNetwork) bool        { return true }
func (s fakeStatus) maxHold(*bitcoinv1alpha1.BitcoinNetwork) time.Duration { return s.Hold }

func TestStatusWriterHoldsWhatIsNotUrgent(t *testing.T) {
	g := NewWithT(t)
	w := newStatusWriter(nil, nodeStatusOwner, &statusPacer{})
	a := testNetwork("a", "uid-a")
	now := time.Now()
	g.Expect(w.holdFor(a, fakeStatus{}, now)).To(BeZero(), "urgent, and nothing written lately")
	lazy := fakeStatus{Hold: lazyStatusDelay}
	g.Expect(w.holdFor(a, lazy, now)).To(Equal(lazyStatusDelay), "held from the first time it is seen")
	g.Expect(w.holdFor(a, lazy, now.Add(time.Second))).To(Equal(lazyStatusDelay-time.Second),
		"counted from the first time, not the last")
	g.Expect(w.holdFor(a, lazy, now.Add(lazyStatusDelay))).To(BeZero())

	w.pacer.wrote(a, now)
	w.recent.store(a, recentWrite{at: now})
	g.Expect(w.holdFor(a, fakeStatus{}, now.Add(200*time.Millisecond))).To(Equal(statusWriteGap-200*time.Millisecond),
		"urgent waits for the gap after the network's last write")
	g.Expect(w.holdFor(a, lazy, now.Add(time.Second))).To(Equal(lazyStatusDelay), "a write ends what was held")
}

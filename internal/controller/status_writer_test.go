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
	w := newStatusWriter(nil, networkStatusOwner)
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

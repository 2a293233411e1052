package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRecentWritesIgnoreTransitionTimes(t *testing.T) {
	g := NewWithT(t)
	var w recentWrites
	status := func(reason string, at time.Time) networkStatus {
		return networkStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
			{Type: "Degraded", Status: metav1.ConditionFalse, Reason: reason, LastTransitionTime: metav1.NewTime(at)},
		}}
	}
	g.Expect(w.justWrote("a", status("Reconciled", time.Now()))).To(BeFalse())

	w.wrote("a", status("Reconciled", time.Now()))
	g.Expect(w.justWrote("a", status("Reconciled", time.Now().Add(time.Minute)))).To(BeTrue(),
		"a stale cache makes the same condition with a new transition time")
	g.Expect(w.justWrote("a", status("ApplyFailed", time.Now()))).To(BeFalse())
	g.Expect(w.justWrote("b", status("Reconciled", time.Now()))).To(BeFalse(), "another network, or the same name recreated")

	w.writes["a"] = recentWrite{status: w.writes["a"].status, at: time.Now().Add(-recentWriteTTL)}
	g.Expect(w.justWrote("a", status("Reconciled", time.Now()))).To(BeFalse(), "an old write is not trusted over the cache")
}

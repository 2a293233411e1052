//go:build faults

package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// failoverTimeout is what the operator promises after its leader crashes: the lease
// duration (10 s) for the Lease to expire, a retry period (2 s) for the standby to
// take it, and the time to start its controllers.
const failoverTimeout = 20 * time.Second

// Two replicas elect a leader; the leader is killed with SIGKILL, so it cannot release
// its Lease. The standby takes over and acts on a network created after the kill, and
// rewrites nothing that the leader left as it should be: a network whose status had
// settled before the kill gets no write.
func TestLeaderFailover(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	a, b := startReplica(t, "failover-a"), startReplica(t, "failover-b")
	existing := testkit.CreateNetwork(t, k8s, ns, "existing", 2)
	expectAvailable(g, existing, convergeTimeout)
	// The leader's first round has written what it found (Connected), and the status
	// has rested since: all there is to write is written.
	g.Eventually(func(g Gomega) {
		g.Expect(meta.FindStatusCondition(getNetwork(g, existing).Status.Conditions, bitcoinv1alpha1.ConditionConnected)).NotTo(BeNil())
	}, convergeTimeout, interval).Should(Succeed())
	last := ""
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, existing).ResourceVersion
		settled := cur == last
		last = cur
		g.Expect(settled).To(BeTrue(), "the status changed in the last 3 s")
	}, convergeTimeout, 3*time.Second).Should(Succeed())

	testkit.By(t, "one replica leads, the other stands by")
	g.Eventually(func() bool { return a.leads() || b.leads() }, convergeTimeout, interval).Should(BeTrue())
	g.Expect(a.leads() && b.leads()).To(BeFalse(), "both replicas say they lead")
	leader, standby := a, b
	if b.leads() {
		leader, standby = b, a
	}

	testkit.By(t, "the leader is killed; a network is created")
	leader.kill()
	killed := time.Now()
	created := testkit.CreateNetwork(t, k8s, ns, "created", 2)

	testkit.By(t, "the standby takes the Lease and renders the new network")
	g.Eventually(func(g Gomega) {
		var list appsv1.StatefulSetList
		g.Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(2))
	}, failoverTimeout, interval).Should(Succeed())
	t.Logf("The standby rendered the new network %.1f s after the leader was killed", time.Since(killed).Seconds())
	g.Expect(standby.leads()).To(BeTrue())
	expectAvailable(g, created, convergeTimeout)

	testkit.By(t, "the standby rewrote nothing of the existing network")
	for _, w := range operatorWrites(g, ns, killed) {
		if strings.Contains(w, " existing") && !strings.Contains(w, " events ") {
			t.Errorf("the new leader rewrote what existed: %s", w)
		}
	}
}

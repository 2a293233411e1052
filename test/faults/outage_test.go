//go:build faults

package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const (
	outage = 30 * time.Second
	// recoveryTimeout is what the operator promises once the API server is back: it
	// acts on a spec change within this time.
	recoveryTimeout = 15 * time.Second
)

// The API server is away for 30 s, and etcd restarts meanwhile. The operator loses
// its Lease and exits, the kubelet restarts it, and once the API server is back it
// acts on a spec change within 15 s, writing each child object at most once and none
// of a network whose spec did not change.
func TestAPIServerOutage(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	r := startReplica(t, "outage")
	changed := testkit.CreateNetwork(t, k8s, ns, "changed", 2)
	bystander := testkit.CreateNetwork(t, k8s, ns, "bystander", 1)
	expectAvailable(g, changed, convergeTimeout)
	expectAvailable(g, bystander, convergeTimeout)
	g.Eventually(r.leads, convergeTimeout, interval).Should(BeTrue())

	testkit.By(t, "the API server stops, etcd restarts, the API server comes back 30 s later")
	g.Expect(lc.StopAPIServer()).To(Succeed())
	down := time.Now()
	g.Expect(lc.RestartEtcd(ctx)).To(Succeed())
	time.Sleep(time.Until(down.Add(outage))) // the outage itself, not a wait for a condition
	g.Expect(lc.StartAPIServer(ctx)).To(Succeed())
	back := time.Now()
	t.Logf("The API server was away for %.1f s; the operator exited %d time(s) meanwhile", back.Sub(down).Seconds(), r.exits())

	testkit.By(t, "a spec change is acted on within 15 s")
	g.Eventually(func() error {
		return k8s.Patch(ctx, changed, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"nodes":3}}`)))
	}, recoveryTimeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		sts := &appsv1.StatefulSetList{}
		g.Expect(k8s.List(ctx, sts, client.InNamespace(ns))).To(Succeed())
		var replicas []int32
		for _, s := range sts.Items {
			replicas = append(replicas, *s.Spec.Replicas)
		}
		g.Expect(replicas).To(ContainElement(BeEquivalentTo(3)))
	}, time.Until(back.Add(recoveryTimeout)), interval).Should(Succeed())
	t.Logf("The operator acted on the spec change %.1f s after the API server's return", time.Since(back).Seconds())
	// The StatefulSet controller, the scheduler and kwok watch through reflectors that
	// back off for up to a minute while the API server is away; the new pod comes once
	// they are back.
	changed.Spec.Nodes = 3
	expectAvailable(g, changed, 2*time.Minute)

	testkit.By(t, "each child was written at most once, and none of the bystander's")
	seen := map[string]bool{}
	for _, w := range operatorWrites(g, ns, back) {
		switch {
		case strings.Contains(w, " events "), strings.Contains(w, " bitcoinnetworks/status "):
			// Events, and status: the node lifecycle controller marked every pod not
			// ready while the Nodes' Leases went unrenewed, and they turn ready again.
		case strings.Contains(w, " bystander"):
			t.Errorf("the operator wrote to the network that did not change: %s", w)
		case seen[w]:
			t.Errorf("the operator wrote twice: %s", w)
		}
		seen[w] = true
	}
}

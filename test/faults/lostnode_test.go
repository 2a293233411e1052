//go:build faults

package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// reportTimeout is what the operator promises once the node lifecycle controller has
// marked a lost Node's pods not ready: the network's status says which nodes and why.
const reportTimeout = 10 * time.Second

// A Node stops heartbeating (its kubelet, here its kwok, is killed). Once the node
// lifecycle controller marks the pod on it not ready, the network's Available
// condition names the node and says its Node stopped reporting. Force-deleting the
// pod, as Kubernetes documents for StatefulSet pods on a lost Node, recovers the
// network on another Node.
func TestLostNode(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	startReplica(t, "lostnode")
	kubelet, err := lc.AddNode(ctx, "node-to-lose")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = k8s.Delete(ctx, &corev1.Node{ObjectMeta: metaName("node-to-lose")}) })

	testkit.By(t, "node 0 runs on the Node to lose, node 1 elsewhere")
	setSchedulable(g, func(n *corev1.Node) bool { return n.Name == "node-to-lose" })
	t.Cleanup(func() { setSchedulable(NewWithT(t), func(*corev1.Node) bool { return true }) })
	n := testkit.CreateNetwork(t, k8s, ns, "lost", 1)
	pod0 := waitForPod(g, ns, n.Name, 0)
	g.Expect(pod0.Spec.NodeName).To(Equal("node-to-lose"))
	// The pods may be made in parallel: node 1 comes only once the other Nodes take pods.
	setSchedulable(g, func(n *corev1.Node) bool { return n.Name != "node-to-lose" })
	g.Expect(k8s.Patch(ctx, n, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"nodes":2}}`)))).To(Succeed())
	n.Spec.Nodes = 2
	g.Expect(waitForPod(g, ns, n.Name, 1).Spec.NodeName).NotTo(Equal("node-to-lose"))
	expectAvailable(g, n, convergeTimeout)

	testkit.By(t, "the Node stops heartbeating; the node lifecycle controller marks its pod not ready")
	kubelet.Kill()
	g.Eventually(func(g Gomega) {
		pod := &corev1.Pod{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod0), pod)).To(Succeed())
		g.Expect(podReadyStatus(pod)).To(Equal(corev1.ConditionFalse))
	}, nodeMonitorGrace+convergeTimeout, interval).Should(Succeed())
	marked := time.Now()

	testkit.By(t, "within 10 s the network says which node is unavailable and why")
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, n)
		c := meta.FindStatusCondition(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(BeEquivalentTo("False"))
		g.Expect(c.Message).To(ContainSubstring(fmt.Sprintf("node 0 (%s): its Node node-to-lose stopped reporting", pod0.Name)))
		g.Expect(cur.Status.Nodes).To(ContainElement(And(
			HaveField("Ordinal", BeEquivalentTo(0)), HaveField("Ready", BeFalse()))))
	}, reportTimeout, interval).Should(Succeed())
	t.Logf("The network reported the lost Node %.1f s after its pod was marked not ready", time.Since(marked).Seconds())

	testkit.By(t, "force-deleting the pod recovers the network on another Node")
	g.Expect(k8s.Delete(ctx, pod0, client.GracePeriodSeconds(0))).To(Succeed())
	expectAvailable(g, n, convergeTimeout)
	g.Expect(waitForPod(g, ns, n.Name, 0).Spec.NodeName).NotTo(Equal("node-to-lose"))
}

// setSchedulable cordons the Nodes for which schedulable is false, and uncordons the
// others.
func setSchedulable(g Gomega, schedulable func(*corev1.Node) bool) {
	var nodes corev1.NodeList
	g.Expect(k8s.List(context.Background(), &nodes)).To(Succeed())
	for i := range nodes.Items {
		node := &nodes.Items[i]
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, !schedulable(node))
		g.Expect(k8s.Patch(context.Background(), node, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	}
}

// waitForPod waits until the pod of a network's node is scheduled, and returns it.
func waitForPod(g Gomega, ns, network string, ordinal int) *corev1.Pod {
	pod := &corev1.Pod{}
	g.Eventually(func(g Gomega) {
		var pods corev1.PodList
		g.Expect(k8s.List(context.Background(), &pods, client.InNamespace(ns),
			client.MatchingLabels{render.LabelInstance: network})).To(Succeed())
		found := false
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && p.Spec.NodeName != "" && hasOrdinal(p, ordinal) {
				*pod, found = *p, true
			}
		}
		g.Expect(found).To(BeTrue(), "no scheduled pod for node %d", ordinal)
	}, convergeTimeout, interval).Should(Succeed())
	return pod
}

func hasOrdinal(p *corev1.Pod, ordinal int) bool {
	return p.Labels["apps.kubernetes.io/pod-index"] == fmt.Sprint(ordinal)
}

func podReadyStatus(pod *corev1.Pod) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

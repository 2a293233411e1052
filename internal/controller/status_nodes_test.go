package controller

import (
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gstruct"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

func testStatefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "n-sts", Namespace: "ns", UID: "sts-uid"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "n-svc",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
		},
	}
}

func testPod(sts *appsv1.StatefulSet, name, ip string, ready corev1.ConditionStatus) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
		Status: corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}},
	}
}

func TestObserveNodes(t *testing.T) {
	g := NewWithT(t)
	sts := testStatefulSet()
	stray := testPod(sts, "n-sts-7", "127.0.0.9", corev1.ConditionTrue)
	stray.OwnerReferences = nil
	pods := []corev1.Pod{
		testPod(sts, "n-sts-10", "127.0.0.11", corev1.ConditionTrue),
		testPod(sts, "n-sts-2", "127.0.0.3", corev1.ConditionFalse),
		testPod(sts, "n-sts-0", "127.0.0.1", corev1.ConditionTrue),
		stray,
		testPod(sts, "n-sts-x", "127.0.0.12", corev1.ConditionTrue),
	}
	network := &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", Generation: 4},
		Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 3}}

	s := observeNodes(network, sts, pods)

	g.Expect(s.Nodes).To(Equal([]bitcoinv1alpha1.BitcoinNetworkNode{
		{Ordinal: 0, Ready: true, IP: "127.0.0.1", NodeName: "n-sts-0", DNSName: "n-sts-0.n-svc.ns.svc"},
		{Ordinal: 2, Ready: false, IP: "127.0.0.3", NodeName: "n-sts-2", DNSName: "n-sts-2.n-svc.ns.svc"},
		{Ordinal: 10, Ready: true, IP: "127.0.0.11", NodeName: "n-sts-10", DNSName: "n-sts-10.n-svc.ns.svc"},
	}), "sorted by ordinal, without pods the StatefulSet does not control or did not name")
	// readyNodes counts every ready pod; Available only the ordinals spec.nodes asks for.
	g.Expect(s.Replicas).To(BeEquivalentTo(3))
	g.Expect(s.ReadyNodes).To(BeEquivalentTo(2))
	g.Expect(s.Selector).To(Equal("app=x"))
	g.Expect(s.Conditions).To(HaveLen(1))
	g.Expect(s.Conditions[0]).To(gstruct.MatchFields(gstruct.IgnoreExtras, gstruct.Fields{
		"Type": Equal("Available"), "Status": Equal(metav1.ConditionFalse), "Reason": Equal("NodesNotReady"),
		"Message": Equal("1 of 3 nodes are ready"), "ObservedGeneration": BeEquivalentTo(4),
	}))
}

func TestObserveNodesBeforeTheStatefulSetExists(t *testing.T) {
	g := NewWithT(t)
	network := &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"}}
	s := observeNodes(network, nil, nil)
	g.Expect(s.Nodes).To(BeEmpty())
	g.Expect(s.Nodes).NotTo(BeNil(), "an empty list, so that server-side apply removes old entries")
	g.Expect(s.Conditions[0].Status).To(Equal(metav1.ConditionTrue), "0 of 0 nodes ready is available")
}

func TestAPodBeingDeletedIsNotReady(t *testing.T) {
	pod := testPod(testStatefulSet(), "n-sts-0", "127.0.0.1", corev1.ConditionTrue)
	NewWithT(t).Expect(podReady(&pod)).To(BeTrue())
	pod.DeletionTimestamp = &metav1.Time{}
	NewWithT(t).Expect(podReady(&pod)).To(BeFalse())
}

func TestStatusChangeDetection(t *testing.T) {
	g := NewWithT(t)
	sts := testStatefulSet()
	network := &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", Generation: 1},
		Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 1}}
	pods := []corev1.Pod{testPod(sts, "n-sts-0", "127.0.0.1", corev1.ConditionTrue)}

	s := observeNodes(network, sts, pods)
	g.Expect(s.changedFrom(network)).To(BeTrue())
	network.Status = bitcoinv1alpha1.BitcoinNetworkStatus{
		Replicas: s.Replicas, ReadyNodes: s.ReadyNodes, Selector: s.Selector, Nodes: s.Nodes, Conditions: s.Conditions,
	}
	again := observeNodes(network, sts, pods)
	g.Expect(again.changedFrom(network)).To(BeFalse())
	g.Expect(again.Conditions[0].LastTransitionTime).To(Equal(s.Conditions[0].LastTransitionTime))

	pods[0].Status.PodIP = "127.0.0.2"
	g.Expect(observeNodes(network, sts, pods).changedFrom(network)).To(BeTrue())
}

func TestAvailableWhileScalingDown(t *testing.T) {
	g := NewWithT(t)
	sts := testStatefulSet()
	network := &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"},
		Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 2}}
	pods := []corev1.Pod{
		testPod(sts, "n-sts-0", "127.0.0.1", corev1.ConditionTrue),
		testPod(sts, "n-sts-1", "127.0.0.2", corev1.ConditionTrue),
		testPod(sts, "n-sts-2", "127.0.0.3", corev1.ConditionTrue),
	}
	s := observeNodes(network, sts, pods)
	g.Expect(s.ReadyNodes).To(BeEquivalentTo(3))
	g.Expect(s.Conditions[0].Status).To(Equal(metav1.ConditionTrue), "nodes 0 and 1 are what the spec asks for")
	g.Expect(s.Conditions[0].Message).To(Equal("2 of 2 nodes are ready"))
}

// A node that will not turn ready by itself is named in the Available condition, with
// why; nodes on their usual way up are only counted, so that a network coming up
// writes no more status than the readiness changes need.
func TestAvailableNamesNodesInTrouble(t *testing.T) {
	g := NewWithT(t)
	sts := testStatefulSet()
	network := &bitcoinv1alpha1.BitcoinNetwork{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"},
		Spec: bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: 4}}
	lost := testPod(sts, "n-sts-0", "127.0.0.1", corev1.ConditionFalse)
	lost.Spec.NodeName = "worker-3"
	lost.Status.Conditions = append(lost.Status.Conditions, corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue})
	crashing := testPod(sts, "n-sts-1", "127.0.0.2", corev1.ConditionFalse)
	crashing.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "bitcoind",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	starting := testPod(sts, "n-sts-2", "", corev1.ConditionFalse)
	starting.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "bitcoind",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	ready := testPod(sts, "n-sts-3", "127.0.0.4", corev1.ConditionTrue)

	s := observeNodes(network, sts, []corev1.Pod{lost, crashing, starting, ready})
	g.Expect(s.Conditions[0].Status).To(Equal(metav1.ConditionFalse))
	g.Expect(s.Conditions[0].Message).To(Equal("1 of 4 nodes are ready; " +
		"node 0 (n-sts-0): its Node worker-3 stopped reporting; " +
		"node 1 (n-sts-1): container bitcoind waiting: CrashLoopBackOff"))

	starting.Status.ContainerStatuses = nil
	g.Expect(observeNodes(network, sts, []corev1.Pod{ready, starting}).Conditions[0].Message).To(
		Equal("1 of 4 nodes are ready"), "a pod on its way up is no trouble")
}

func TestWhatIsUrgentInTheNodesStatus(t *testing.T) {
	g := NewWithT(t)
	ns := "ns"
	shown := &bitcoinv1alpha1.BitcoinNetwork{Status: bitcoinv1alpha1.BitcoinNetworkStatus{
		ReadyNodes: 1,
		Nodes:      []bitcoinv1alpha1.BitcoinNetworkNode{node(ns, 0, true, "127.0.0.1")},
		Mining:     &bitcoinv1alpha1.BitcoinNetworkMiningStatus{Address: "bcrt1a", Height: ptr.To[int64](101)},
		Conditions: []metav1.Condition{
			{Type: bitcoinv1alpha1.ConditionAvailable, Status: metav1.ConditionFalse, Reason: "NodesNotReady", Message: "1 of 2 nodes are ready"},
			{Type: bitcoinv1alpha1.ConditionSynced, Status: metav1.ConditionTrue, Reason: "Synced", Message: "at height 101"},
		},
	}}
	shown.Spec.Nodes = 2
	base := func() nodeStatus {
		return nodeStatus{ReadyNodes: 1, Nodes: []bitcoinv1alpha1.BitcoinNetworkNode{node(ns, 0, true, "127.0.0.1")},
			Mining:     &bitcoinv1alpha1.BitcoinNetworkMiningStatus{Address: "bcrt1a", Height: ptr.To[int64](101)},
			Conditions: slices.Clone(shown.Status.Conditions)}
	}
	g.Expect(base().urgentFrom(shown)).To(BeFalse(), "nothing changed")

	lazy := map[string]func(*nodeStatus){
		"a pod that is not ready appears": func(s *nodeStatus) {
			s.Nodes = append(s.Nodes, node(ns, 1, false, ""))
		},
		"a node's peers and blocks": func(s *nodeStatus) { s.Nodes[0].Peers, s.Nodes[0].Blocks = ptr.To[int32](2), ptr.To[int64](5) },
		"a round's message":         func(s *nodeStatus) { s.Conditions[1].Message = "at height 102" },
		"a condition that appears False": func(s *nodeStatus) {
			s.Conditions = append(s.Conditions, metav1.Condition{Type: bitcoinv1alpha1.ConditionConnected, Status: metav1.ConditionUnknown, Reason: "NodesUnreachable"})
		},
		"the mined height": func(s *nodeStatus) { s.Mining.Height = ptr.To[int64](102) },
	}
	fresh := shown.DeepCopy()
	fresh.Status.Conditions = fresh.Status.Conditions[1:]
	g.Expect(base().urgentFrom(fresh)).To(BeFalse(), "Available appearing False")
	for what, change := range lazy {
		s := base()
		change(&s)
		g.Expect(s.urgentFrom(shown)).To(BeFalse(), what)
		g.Expect(s.maxHold(shown)).To(Equal(lazyWhileComingUp), "%s, while node 1 is still to turn ready", what)
	}
	up := shown.DeepCopy()
	up.Spec.Nodes = 1
	g.Expect(base().maxHold(up)).To(Equal(lazyStatusDelay), "every node ready: nothing to carry it soon")
	urgent := map[string]func(*nodeStatus){
		"a node turning ready": func(s *nodeStatus) {
			s.Nodes = append(s.Nodes, node(ns, 1, true, "127.0.0.2"))
			s.ReadyNodes = 2
		},
		"a node turning unready": func(s *nodeStatus) { s.Nodes[0].Ready, s.ReadyNodes = false, 0 },
		"a condition turning": func(s *nodeStatus) {
			s.Conditions[0].Status, s.Conditions[0].Reason = metav1.ConditionTrue, "NodesReady"
		},
		"a condition that appears True": func(s *nodeStatus) {
			s.Conditions = append(s.Conditions, metav1.Condition{Type: bitcoinv1alpha1.ConditionConnected, Status: metav1.ConditionTrue, Reason: "Connected"})
		},
		"another mining address": func(s *nodeStatus) { s.Mining.Address = "bcrt1b" },
		"mining stopped":         func(s *nodeStatus) { s.Mining = nil },
	}
	for what, change := range urgent {
		s := base()
		change(&s)
		g.Expect(s.urgentFrom(shown)).To(BeTrue(), what)
		g.Expect(s.maxHold(shown)).To(BeZero(), what)
	}
}

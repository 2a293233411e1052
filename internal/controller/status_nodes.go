package controller

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// nodeStatus is the part of the status the status reconciler owns: what the pods show,
// and what the peer reconciler's last round concluded (addRound).
type nodeStatus struct {
	Replicas   int32                                       `json:"replicas"`
	ReadyNodes int32                                       `json:"readyNodes"`
	Selector   string                                      `json:"selector"`
	Nodes      []bitcoinv1alpha1.BitcoinNetworkNode        `json:"nodes"`
	Mining     *bitcoinv1alpha1.BitcoinNetworkMiningStatus `json:"mining,omitempty"`
	Conditions []metav1.Condition                          `json:"conditions"`
}

// observeNodes builds the status of a network's nodes from its StatefulSet (nil when
// it does not exist yet) and the pods carrying the network's label. Only pods that the
// StatefulSet controls count.
func observeNodes(network *bitcoinv1alpha1.BitcoinNetwork, sts *appsv1.StatefulSet, pods []corev1.Pod) nodeStatus {
	s := nodeStatus{Nodes: []bitcoinv1alpha1.BitcoinNetworkNode{}}
	trouble := map[int32]string{}
	if sts != nil {
		if sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector); err == nil {
			s.Selector = sel.String()
		}
		for i := range pods {
			if node, ok := observeNode(network, sts, &pods[i]); ok {
				s.Nodes = append(s.Nodes, node)
				if why := podTrouble(&pods[i]); !node.Ready && why != "" {
					trouble[node.Ordinal] = why
				}
			}
		}
	}
	slices.SortFunc(s.Nodes, func(a, b bitcoinv1alpha1.BitcoinNetworkNode) int { return int(a.Ordinal - b.Ordinal) })
	s.Replicas = int32(len(s.Nodes))
	for _, n := range s.Nodes {
		if n.Ready {
			s.ReadyNodes++
		}
	}
	s.Conditions = []metav1.Condition{available(network, s.Nodes, trouble)}
	return s
}

// observeNode describes one pod of the StatefulSet as a node: its ordinal is the
// suffix the StatefulSet controller gives the pod's name, its DNS name comes from the
// headless Service the StatefulSet names.
func observeNode(network *bitcoinv1alpha1.BitcoinNetwork, sts *appsv1.StatefulSet, pod *corev1.Pod) (bitcoinv1alpha1.BitcoinNetworkNode, bool) {
	ordinal, ok := podOrdinal(sts, pod)
	if !ok {
		return bitcoinv1alpha1.BitcoinNetworkNode{}, false
	}
	return bitcoinv1alpha1.BitcoinNetworkNode{
		Ordinal:  ordinal,
		Ready:    podReady(pod),
		IP:       pod.Status.PodIP,
		NodeName: pod.Name,
		DNSName:  fmt.Sprintf("%s.%s.%s.svc", pod.Name, sts.Spec.ServiceName, network.Namespace),
	}, true
}

// podOrdinal returns the ordinal of a pod the StatefulSet controls: the suffix the
// StatefulSet controller gives the pod's name. Other pods have none.
func podOrdinal(sts *appsv1.StatefulSet, pod *corev1.Pod) (int32, bool) {
	suffix, ok := strings.CutPrefix(pod.Name, sts.Name+"-")
	ordinal, err := strconv.ParseInt(suffix, 10, 32)
	if !ok || err != nil || !metav1.IsControlledBy(pod, sts) {
		return 0, false
	}
	return int32(ordinal), true
}

// podReady tells whether the pod's readiness probe (bitcoind answering RPC) passes. A
// pod that is being deleted is on its way out and no longer counts.
func podReady(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && podCondition(pod, corev1.PodReady) == corev1.ConditionTrue
}

// podTrouble says why a pod that is not ready will not turn ready by itself: its Node
// stopped reporting (the node lifecycle controller marked the pod not ready, while its
// containers were last seen ready), or its container waits for a reason other than
// starting. A pod on its usual way up has no trouble, so that a network coming up
// writes no more status than before.
func podTrouble(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil {
		return ""
	}
	ready, containersReady := podCondition(pod, corev1.PodReady), podCondition(pod, corev1.ContainersReady)
	if ready == corev1.ConditionFalse && containersReady == corev1.ConditionTrue {
		return fmt.Sprintf("its Node %s stopped reporting", pod.Spec.NodeName)
	}
	for _, c := range pod.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil && !startingReasons[w.Reason] {
			return "container " + c.Name + " waiting: " + w.Reason
		}
	}
	return ""
}

// startingReasons are the waiting reasons of a container on its usual way up.
var startingReasons = map[string]bool{"": true, "ContainerCreating": true, "PodInitializing": true}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

// maxTroubleShown bounds how many nodes' trouble the Available condition spells out.
const maxTroubleShown = 5

// available is True when every node the spec asks for is ready; so also for a network
// of 0 nodes. Nodes beyond spec.nodes, on their way out while the network scales down,
// do not count. When False, the message names the nodes in trouble and why.
func available(network *bitcoinv1alpha1.BitcoinNetwork, nodes []bitcoinv1alpha1.BitcoinNetworkNode, trouble map[int32]string) metav1.Condition {
	want := network.Spec.Nodes
	var ready int32
	for _, n := range nodes {
		if n.Ready && n.Ordinal < want {
			ready++
		}
	}
	msg := fmt.Sprintf("%d of %d nodes are ready", ready, want)
	if ready == want {
		return condition(network, bitcoinv1alpha1.ConditionAvailable, metav1.ConditionTrue, "NodesReady", msg)
	}
	var troubled []string
	for _, n := range nodes {
		if why, ok := trouble[n.Ordinal]; ok && n.Ordinal < want {
			troubled = append(troubled, fmt.Sprintf("node %d (%s): %s", n.Ordinal, n.NodeName, why))
		}
	}
	if len(troubled) > maxTroubleShown {
		troubled = append(troubled[:maxTroubleShown], fmt.Sprintf("%d more", len(troubled)-maxTroubleShown))
	}
	if len(troubled) > 0 {
		msg += "; " + strings.Join(troubled, "; ")
	}
	return condition(network, bitcoinv1alpha1.ConditionAvailable, metav1.ConditionFalse, "NodesNotReady", msg)
}

// addObservations adds to each node the peers and blocks it last reported to the
// peer reconciler. A node not heard from since the operator started keeps what the
// status shows, so that a restarted operator does not blank them.
func (s *nodeStatus) addObservations(network *bitcoinv1alpha1.BitcoinNetwork, obs *observations) {
	shown := map[int32]bitcoinv1alpha1.BitcoinNetworkNode{}
	for _, n := range network.Status.Nodes {
		shown[n.Ordinal] = n
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if o, ok := obs.node(network, n.Ordinal); ok {
			n.Peers, n.Blocks = ptr.To(o.Peers), ptr.To(o.Blocks)
			n.InboundPeers, n.OutboundPeers = ptr.To(o.Inbound), ptr.To(o.Outbound)
			n.BestBlockHash, n.Subversion, n.Reorgs = o.BestBlockHash, o.Subversion, o.Reorgs
		} else if old, ok := shown[n.Ordinal]; ok {
			n.Peers, n.Blocks = old.Peers, old.Blocks
			n.InboundPeers, n.OutboundPeers = old.InboundPeers, old.OutboundPeers
			n.BestBlockHash, n.Subversion, n.Reorgs = old.BestBlockHash, old.Subversion, old.Reorgs
		}
	}
}

// roundConditions are the conditions the peer reconciler's rounds conclude.
var roundConditions = []string{bitcoinv1alpha1.ConditionConnected, bitcoinv1alpha1.ConditionSynced, bitcoinv1alpha1.ConditionPartitioned}

// addRound adds the conditions and mining status of the peer reconciler's last round.
// Before a round has ended since the operator started, it keeps what the status
// shows, so that a restarted operator does not blank them.
func (s *nodeStatus) addRound(network *bitcoinv1alpha1.BitcoinNetwork, obs *observations) {
	if round, ok := obs.round(network); ok {
		s.Mining = round.Mining
		s.Conditions = append(s.Conditions, round.Conditions...)
		return
	}
	s.Mining = network.Status.Mining
	for _, t := range roundConditions {
		if c := meta.FindStatusCondition(network.Status.Conditions, t); c != nil {
			s.Conditions = append(s.Conditions, *c)
		}
	}
}

// changedFrom tells whether s differs from what the network's status shows.
func (s nodeStatus) changedFrom(network *bitcoinv1alpha1.BitcoinNetwork) bool {
	cur := &network.Status
	return cur.Replicas != s.Replicas || cur.ReadyNodes != s.ReadyNodes || cur.Selector != s.Selector ||
		!equality.Semantic.DeepEqual(nonNil(cur.Nodes), s.Nodes) ||
		!equality.Semantic.DeepEqual(cur.Mining, s.Mining) ||
		conditionsChanged(network, s.Conditions)
}

// maxHold holds nothing that is urgent (urgentFrom), and the rest lazyStatusDelay, or
// lazyWhileComingUp while nodes the spec asks for are still to turn ready.
func (s nodeStatus) maxHold(network *bitcoinv1alpha1.BitcoinNetwork) time.Duration {
	switch {
	case s.urgentFrom(network):
		return 0
	case s.ReadyNodes < network.Spec.Nodes:
		return lazyWhileComingUp
	}
	return lazyStatusDelay
}

// urgentFrom tells whether a node turned ready or not, a condition turned, Available
// says something new (it names nodes in trouble; its first "not ready yet" is not
// urgent), or the mining status changed in more than its height.
func (s nodeStatus) urgentFrom(network *bitcoinv1alpha1.BitcoinNetwork) bool {
	ready := map[int32]bool{}
	for _, n := range network.Status.Nodes {
		ready[n.Ordinal] = n.Ready
	}
	for _, n := range s.Nodes {
		if n.Ready != ready[n.Ordinal] {
			return true
		}
	}
	shown := network.Status.Mining
	available := meta.FindStatusCondition(s.Conditions, bitcoinv1alpha1.ConditionAvailable)
	shownAvailable := meta.FindStatusCondition(network.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)
	return s.ReadyNodes != network.Status.ReadyNodes || conditionsUrgent(network, s.Conditions) ||
		available != nil && shownAvailable != nil && conditionChanged(network, *available) ||
		(s.Mining == nil) != (shown == nil) || s.Mining != nil && s.Mining.Address != shown.Address
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

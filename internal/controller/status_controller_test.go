package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// createPod creates pod <sts>-<ordinal> as the StatefulSet controller would, then gives
// it an IP and a Ready condition as a kubelet would.
func createPod(t *testing.T, sts *appsv1.StatefulSet, ordinal int, ip string, ready bool) *corev1.Pod {
	t.Helper()
	pod := podOf(sts, ordinal)
	NewWithT(t).Expect(k8s.Create(context.Background(), pod)).To(Succeed())
	setPodStatus(t, pod, ip, ready)
	return pod
}

// podOf is pod <sts>-<ordinal> as the StatefulSet controller would create it.
func podOf(sts *appsv1.StatefulSet, ordinal int) *corev1.Pod {
	name := fmt.Sprintf("%s-%d", sts.Name, ordinal)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       sts.Namespace,
			Labels:          map[string]string{"statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": fmt.Sprint(ordinal)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))},
		},
		Spec: *sts.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range sts.Spec.Template.Labels {
		pod.Labels[k] = v
	}
	pod.Spec.Hostname, pod.Spec.Subdomain = name, sts.Spec.ServiceName
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + name},
	}})
	return pod
}

func setPodStatus(t *testing.T, pod *corev1.Pod, ip string, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	NewWithT(t).Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())
}

func getNetwork(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) *bitcoinv1alpha1.BitcoinNetwork {
	cur := &bitcoinv1alpha1.BitcoinNetwork{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
	return cur
}

func node(ns string, ordinal int32, ready bool, ip string) bitcoinv1alpha1.BitcoinNetworkNode {
	pod := fmt.Sprintf("status-sts-%d", ordinal)
	return bitcoinv1alpha1.BitcoinNetworkNode{
		Ordinal: ordinal, Ready: ready, IP: ip, NodeName: pod, DNSName: pod + ".status-svc." + ns + ".svc",
	}
}

func TestStatusFollowsPods(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	n := testkit.CreateNetwork(t, k8s, ns, "status", 3)
	var sts *appsv1.StatefulSet
	g.Eventually(func(g Gomega) { sts = statefulSet(g, n) }, timeout, interval).Should(Succeed())

	pods := []*corev1.Pod{
		createPod(t, sts, 0, "127.10.0.1", true),
		createPod(t, sts, 1, "127.10.0.2", true),
		createPod(t, sts, 2, "127.10.0.3", true),
	}
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, n)
		g.Expect(cur.Status.Nodes).To(Equal([]bitcoinv1alpha1.BitcoinNetworkNode{
			node(ns, 0, true, "127.10.0.1"), node(ns, 1, true, "127.10.0.2"), node(ns, 2, true, "127.10.0.3"),
		}))
		g.Expect(cur.Status.ReadyNodes).To(BeEquivalentTo(3))
		g.Expect(cur.Status.Replicas).To(BeEquivalentTo(3))
		g.Expect(cur.Status.Selector).To(Equal("app.kubernetes.io/instance=status,app.kubernetes.io/name=bitcoin-network"))
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)).To(BeTrue())
		// The pods have no bitcoind: the rounds' conclusion, which is not urgent, comes
		// with a later write (status_writer.go).
		g.Expect(meta.FindStatusCondition(cur.Status.Conditions, bitcoinv1alpha1.ConditionConnected)).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "once converged, the operator writes nothing")
	expectNoWrites(t, sts, pods[0])

	testkit.By(t, "a pod turning unready flips its entry")
	setPodStatus(t, pods[1], "127.10.0.2", false)
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, n)
		g.Expect(cur.Status.Nodes[1]).To(Equal(node(ns, 1, false, "127.10.0.2")))
		g.Expect(cur.Status.ReadyNodes).To(BeEquivalentTo(2))
		c := meta.FindStatusCondition(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(Equal("2 of 3 nodes are ready"))
	}, timeout, interval).Should(Succeed())

	testkit.By(t, "a removed pod disappears")
	g.Expect(k8s.Delete(ctx, pods[2], client.GracePeriodSeconds(0))).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, n)
		g.Expect(cur.Status.Nodes).To(Equal([]bitcoinv1alpha1.BitcoinNetworkNode{
			node(ns, 0, true, "127.10.0.1"), node(ns, 1, false, "127.10.0.2"),
		}))
		g.Expect(cur.Status.Replicas).To(BeEquivalentTo(2))
	}, timeout, interval).Should(Succeed())
}

// A network coming up changes its status many times a second. Its status writes are
// paced (status_writer.go): at least statusWriteGap apart, carrying every change.
func TestStatusWritesArePaced(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	n := testkit.CreateNetwork(t, k8s, ns, "paced", 4)
	var sts *appsv1.StatefulSet
	g.Eventually(func(g Gomega) { sts = statefulSet(g, n) }, timeout, interval).Should(Succeed())
	path := fmt.Sprintf("/apis/bitcoin.bitcoinops.io/v1alpha1/namespaces/%s/bitcoinnetworks/paced/status", ns)

	// Nodes turn ready 150 ms apart, each an urgent change: unpaced, each was a write.
	for i := range 4 {
		createPod(t, sts, i, fmt.Sprintf("127.10.1.%d", i+1), true)
		time.Sleep(150 * time.Millisecond)
	}
	g.Eventually(func(g Gomega) {
		cur := getNetwork(g, n)
		g.Expect(cur.Status.ReadyNodes).To(BeEquivalentTo(4))
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	times := writes.at(path)
	g.Expect(len(times)).To(BeNumerically(">=", 2))
	for i := 1; i < len(times); i++ {
		// At most two a second, the promise (not the constant, which a mistake may
		// change). The pacer reads its clock before the request goes out: allow for
		// the difference from the transport's.
		g.Expect(times[i].Sub(times[i-1])).To(BeNumerically(">=", 450*time.Millisecond),
			"status write %d of %d came %s after the one before", i+1, len(times), times[i].Sub(times[i-1]))
	}
}

// expectNoWrites proves the steady state: it makes the reconcilers run again without
// changing anything they own (an annotation on the StatefulSet, a label on a pod; the
// peer reconciler's own period), waits until they have, and then sees no write
// request from the operator in the network's namespace for 10 s. (Other tests'
// networks live on, and their status writes may come late: status_writer.go.)
func expectNoWrites(t *testing.T, sts *appsv1.StatefulSet, pod *corev1.Pod) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	networkRuns, statusRuns := reconciles(g, "bitcoinnetwork"), reconciles(g, "bitcoinnetwork-status")
	peerRuns := reconciles(g, "bitcoinnetwork-peers")
	before, _ := writes.in(sts.Namespace)

	g.Expect(k8s.Patch(ctx, sts, client.RawPatch("application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"test.bitcoinops.io/touch":"1"}}}`)))).To(Succeed())
	g.Expect(k8s.Patch(ctx, pod, client.RawPatch("application/merge-patch+json",
		[]byte(`{"metadata":{"labels":{"test.bitcoinops.io/touch":"1"}}}`)))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(reconciles(g, "bitcoinnetwork")).To(BeNumerically(">", networkRuns))
		g.Expect(reconciles(g, "bitcoinnetwork-status")).To(BeNumerically(">", statusRuns))
		g.Expect(reconciles(g, "bitcoinnetwork-peers")).To(BeNumerically(">", peerRuns))
	}, timeout, interval).Should(Succeed())

	g.Consistently(func(g Gomega) {
		count, paths := writes.in(sts.Namespace)
		g.Expect(count).To(Equal(before), "writes at steady state, to: %v", paths)
	}, 10*time.Second, 250*time.Millisecond).Should(Succeed())
}

func TestZeroNodesIsAvailable(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "empty", 0)
	g.Eventually(func(g Gomega) {
		g.Expect(*statefulSet(g, n).Spec.Replicas).To(BeZero())
		cur := getNetwork(g, n)
		g.Expect(cur.Status.Nodes).To(BeEmpty())
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

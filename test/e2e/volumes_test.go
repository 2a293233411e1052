//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// stayPeriod is how long a claim that must stay is watched once what could have
// deleted it (the garbage collector, acting on the StatefulSet controller's owner
// references) has had its cause: it acts within a second here.
const stayPeriod = 5 * time.Second

// claim is a node's PersistentVolumeClaim as these tests look at it.
type claim struct {
	name   string
	owners []string // kinds of its owners
}

// claimsOf returns the network's claims, data-<name>-sts-<ordinal>, by name.
func claimsOf(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) []claim {
	var list corev1.PersistentVolumeClaimList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(n.Namespace))).To(Succeed())
	var out []claim
	for _, pvc := range list.Items {
		if !strings.HasPrefix(pvc.Name, "data-"+n.Name+"-sts-") {
			continue
		}
		c := claim{name: pvc.Name}
		for _, o := range pvc.OwnerReferences {
			c.owners = append(c.owners, o.Kind)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b claim) int { return strings.Compare(a.name, b.name) })
	return out
}

func claimNames(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) []string {
	var names []string
	for _, c := range claimsOf(g, n) {
		names = append(names, c.name)
	}
	return names
}

func createNetworkWithRetention(t *testing.T, namespace, name string, nodes int32, p *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy) *bitcoinv1alpha1.BitcoinNetwork {
	t.Helper()
	n := &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: nodes, PersistentVolumeClaimRetentionPolicy: p},
	}
	NewWithT(t).Expect(k8s.Create(context.Background(), n)).To(Succeed())
	return n
}

func scaleTo(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork, nodes int32) {
	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.Nodes = nodes
	g.Expect(k8s.Patch(context.Background(), n, patch)).To(Succeed())
}

// deleteNetwork deletes a network and waits until its pods and StatefulSet are gone.
func deleteNetwork(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) {
	g.Expect(k8s.Delete(context.Background(), n, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	g.Eventually(func(g Gomega) {
		gone(g, n)
		g.Expect(childrenOf(g, n.Namespace, n.Name).empty()).To(BeTrue())
	}, convergeTimeout, interval).Should(Succeed())
}

// The default, Retain: no claim gets an owner, and every claim outlives a scale-down
// and the network's deletion.
func TestVolumesAreRetainedByDefault(t *testing.T) {
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "keep", 2)
	expectConverged(g, n, 2)
	all := []string{"data-keep-sts-0", "data-keep-sts-1"}
	g.Eventually(func(g Gomega) { g.Expect(claimNames(g, n)).To(Equal(all)) }, convergeTimeout, interval).Should(Succeed())
	var labelled corev1.PersistentVolumeClaimList
	g.Expect(k8s.List(context.Background(), &labelled, client.InNamespace(n.Namespace), client.MatchingLabels{
		"app.kubernetes.io/instance": n.Name, "app.kubernetes.io/name": "bitcoin-network"})).To(Succeed())
	g.Expect(labelled.Items).To(HaveLen(2), "docs/volumes.md removes retained claims by these labels")

	scaleTo(g, n, 1)
	expectConverged(g, n, 1)
	g.Consistently(func(g Gomega) {
		g.Expect(claimsOf(g, n)).To(Equal([]claim{{name: all[0]}, {name: all[1]}}), "claims with no owner, both kept")
	}, stayPeriod, interval).Should(Succeed())

	deleteNetwork(g, n)
	g.Consistently(func(g Gomega) { g.Expect(claimNames(g, n)).To(Equal(all)) }, stayPeriod, interval).Should(Succeed())
}

// Delete: a scaled-down node's claim goes with its pod, and every claim goes with the
// network.
func TestVolumesAreDeletedWhenAsked(t *testing.T) {
	g := NewWithT(t)
	n := createNetworkWithRetention(t, newNamespace(t), "drop", 2, &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	})
	expectConverged(g, n, 2)
	g.Eventually(func(g Gomega) {
		g.Expect(claimsOf(g, n)).To(Equal([]claim{
			{name: "data-drop-sts-0", owners: []string{"StatefulSet"}},
			{name: "data-drop-sts-1", owners: []string{"StatefulSet"}},
		}))
	}, convergeTimeout, interval).Should(Succeed())

	scaleTo(g, n, 1)
	expectConverged(g, n, 1)
	g.Eventually(func(g Gomega) { g.Expect(claimNames(g, n)).To(Equal([]string{"data-drop-sts-0"})) }, convergeTimeout, interval).Should(Succeed())

	deleteNetwork(g, n)
	g.Eventually(func(g Gomega) { g.Expect(claimNames(g, n)).To(BeEmpty()) }, convergeTimeout, interval).Should(Succeed())
}

// An existing network's policy may change, as on upgrade from Delete to Retain: the
// StatefulSet controller takes its owner references off the claims, which then stay.
func TestVolumesStayOnceThePolicyTurnsToRetain(t *testing.T) {
	g := NewWithT(t)
	n := createNetworkWithRetention(t, newNamespace(t), "turn", 1, &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	})
	expectConverged(g, n, 1)
	g.Eventually(func(g Gomega) {
		g.Expect(claimsOf(g, n)).To(Equal([]claim{{name: "data-turn-sts-0", owners: []string{"StatefulSet"}}}))
	}, convergeTimeout, interval).Should(Succeed())

	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.PersistentVolumeClaimRetentionPolicy = nil // the default: Retain
	g.Expect(k8s.Patch(context.Background(), n, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(claimsOf(g, n)).To(Equal([]claim{{name: "data-turn-sts-0"}}))
	}, convergeTimeout, interval).Should(Succeed())

	deleteNetwork(g, n)
	g.Consistently(func(g Gomega) { g.Expect(claimNames(g, n)).To(Equal([]string{"data-turn-sts-0"})) }, stayPeriod, interval).Should(Succeed())
}

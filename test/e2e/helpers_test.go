//go:build e2e

package e2e

import (
	"context"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// children lists what the network's chart rendered and the StatefulSet created, by the
// network's label.
type children struct {
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	pods         []corev1.Pod
}

func childrenOf(g Gomega, namespace, name string) children {
	ctx := context.Background()
	sel := client.MatchingLabels{render.LabelInstance: name}
	var sts appsv1.StatefulSetList
	var svc corev1.ServiceList
	var pods corev1.PodList
	g.Expect(k8s.List(ctx, &sts, client.InNamespace(namespace), sel)).To(Succeed())
	g.Expect(k8s.List(ctx, &svc, client.InNamespace(namespace), sel)).To(Succeed())
	g.Expect(k8s.List(ctx, &pods, client.InNamespace(namespace), sel)).To(Succeed())
	return children{sts.Items, svc.Items, pods.Items}
}

func (c children) empty() bool {
	return len(c.statefulSets)+len(c.services)+len(c.pods) == 0
}

// expectConverged waits until the network runs nodes ready pods and says so.
func expectConverged(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork, nodes int) {
	g.Eventually(func(g Gomega) {
		cur := &bitcoinv1alpha1.BitcoinNetwork{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(n), cur)).To(Succeed())
		g.Expect(cur.Status.Nodes).To(HaveLen(nodes))
		g.Expect(cur.Status.ReadyNodes).To(BeEquivalentTo(nodes))
		g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, bitcoinv1alpha1.ConditionAvailable)).To(BeTrue())
		c := childrenOf(g, n.Namespace, n.Name)
		g.Expect(c.pods).To(HaveLen(nodes))
		g.Expect(c.statefulSets).To(HaveLen(1))
		g.Expect(c.services).To(HaveLen(1))
	}, convergeTimeout, interval).Should(Succeed())
}

// operatorWrites returns the operator's write requests to resource in namespace since
// a moment, from the audit log.
func operatorWrites(g Gomega, namespace, resource string, since time.Time) []cluster.AuditEvent {
	all, err := lc.OperatorWrites(since, time.Time{})
	g.Expect(err).NotTo(HaveOccurred())
	var out []cluster.AuditEvent
	for _, e := range all {
		if e.ObjectRef.Namespace == namespace && e.ObjectRef.Resource == resource {
			out = append(out, e)
		}
	}
	return out
}

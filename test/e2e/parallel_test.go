//go:build e2e

package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// A network created with podManagementPolicy Parallel gets a StatefulSet whose
// controller starts every pod at once; the nodes, turning ready in whatever order kwok
// reports them, end as one network.
func TestParallelNetworkComesUpAsOne(t *testing.T) {
	g := NewWithT(t)
	n := testkit.Network(newNamespace(t), "parallel", 12)
	n.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	g.Expect(k8s.Create(context.Background(), n)).To(Succeed())
	f, world := startDoubles(t, n, nil)
	expectConverged(g, n, 12)
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: n.Namespace, Name: n.Name + "-sts"}, sts)).To(Succeed())
	g.Expect(sts.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement))
	expectPeered(g, n, f, world, 12)
	g.Eventually(func(g Gomega) {
		g.Expect(networkCondition(g, n, bitcoinv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
	}, convergeTimeout, interval).Should(Succeed())
}

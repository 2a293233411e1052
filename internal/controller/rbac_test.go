package controller

import (
	"context"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// The whole suite runs the operator under the generated role. This test shows that the
// suite would notice a missing rule: without bitcoinnetworks/status in the role, the
// operator's status writes are forbidden.
func TestStatusWritesNeedTheStatusRule(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	n := testkit.CreateNetwork(t, k8s, newNamespace(t), "rbac", 0)

	role, err := managerRole()
	g.Expect(err).NotTo(HaveOccurred())
	role.Rules = slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.Resources, "bitcoinnetworks/status")
	})
	g.Expect(grant(ctx, "no-status", role)).To(Succeed())

	status := networkStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
		{Type: "Test", Status: metav1.ConditionTrue, Reason: "Test", LastTransitionTime: metav1.Now()},
	}}
	restricted, err := client.New(impersonating("no-status"), client.Options{Scheme: NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	err = applyStatus(ctx, restricted, n, "test", status)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "status write without the rule: %v", err)

	full, err := client.New(impersonating(operatorAccount), client.Options{Scheme: NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(applyStatus(ctx, full, n, "test", status)).To(Succeed())
}

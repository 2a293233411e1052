//go:build olm

package olm

import (
	"context"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// networkGrants are requests the operator makes to run a network, as `kubectl auth
// can-i` takes them: reading a user's Secret, creating a StatefulSet, watching the
// networks, deleting a pod stuck in a rollout.
var networkGrants = [][]string{
	{"get", "secrets"},
	{"list", "secrets"},
	{"create", "statefulsets.apps"},
	{"watch", "bitcoinnetworks.bitcoin.bitcoinops.io"},
	{"delete", "pods"},
}

// expectServes checks, with `kubectl auth can-i` as the operator's ServiceAccount in
// namespace, that RBAC lets it run networks in every namespace of served and in none
// of notServed. For an AllNamespaces group OLM lifts the CSV's Roles into
// ClusterRoles in a sync of its own, which may come after the CSV has Succeeded, so
// the grants are awaited (before the operator starts, which would otherwise meet
// forbidden answers until then).
func expectServes(t *testing.T, namespace string, served, notServed []string) {
	t.Helper()
	served = slices.Compact(slices.Sorted(slices.Values(served)))
	step := "the operator's ServiceAccount may run networks in " + strings.Join(served, ", ")
	if len(notServed) > 0 {
		step += " and not in " + strings.Join(notServed, ", ")
	}
	testkit.By(t, step)
	g := NewWithT(t)
	user := operatorUser(namespace)
	for _, ns := range served {
		for _, grant := range networkGrants {
			g.Eventually(func(g Gomega) {
				g.Expect(canI(g, user, ns, grant)).To(BeTrue(), "%s may %v in %s", user, grant, ns)
			}, olmTimeout, interval).Should(Succeed())
		}
	}
	for _, ns := range notServed {
		for _, grant := range networkGrants {
			g.Expect(canI(g, user, ns, grant)).To(BeFalse(), "%s may not %v in %s", user, grant, ns)
		}
	}
}

// canI asks `kubectl auth can-i`, impersonating user (the API server adds a
// ServiceAccount's groups as it does for its token), whether user may make the
// request in namespace.
func canI(g Gomega, user, namespace string, request []string) bool {
	args := append([]string{"auth", "can-i"}, request...)
	args = append(args, "--namespace", namespace, "--as", user)
	out, err := lc.Kubectl(context.Background(), args...).Output()
	answer := strings.TrimSpace(string(out))
	g.Expect(answer).To(BeElementOf("yes", "no"), "kubectl %v: %v", args, err)
	return answer == "yes"
}

// expectPermissionsScoped checks the CSV's rules against the API server's own
// discovery (the CRD installed): every resource under `permissions` (which OLM grants
// per served namespace) is namespaced, so a rule there is never silently void, and
// every resource under `clusterPermissions` is cluster-scoped, so nothing namespaced
// is granted everywhere whatever the install mode.
func expectPermissionsScoped(t *testing.T) {
	t.Helper()
	g := NewWithT(t)
	csv := bundleCSV(g)
	httpClient, err := rest.HTTPClientFor(lc.Config)
	g.Expect(err).NotTo(HaveOccurred())
	mapper, err := apiutil.NewDynamicRESTMapper(lc.Config, httpClient)
	g.Expect(err).NotTo(HaveOccurred())

	scopes := map[string]bool{"permissions": true, "clusterPermissions": false}
	for field, perms := range map[string][]operatorsv1alpha1.StrategyDeploymentPermissions{
		"permissions":        csv.Spec.InstallStrategy.StrategySpec.Permissions,
		"clusterPermissions": csv.Spec.InstallStrategy.StrategySpec.ClusterPermissions,
	} {
		for _, p := range perms {
			for _, rule := range p.Rules {
				g.Expect(rule.NonResourceURLs).To(BeEmpty(), "%s: non-resource URLs are cluster-wide", field)
				for _, group := range rule.APIGroups {
					for _, resource := range rule.Resources {
						resource, _, _ = strings.Cut(resource, "/") // a subresource has its resource's scope
						gvk, err := mapper.KindFor(schema.GroupVersionResource{Group: group, Resource: resource})
						g.Expect(err).NotTo(HaveOccurred(), "%s: %s.%s", field, resource, group)
						namespaced, err := apiutil.IsGVKNamespaced(gvk, mapper)
						g.Expect(err).NotTo(HaveOccurred())
						g.Expect(namespaced).To(Equal(scopes[field]), "%s: %s.%s is namespaced: %t", field, resource, group, namespaced)
					}
				}
			}
		}
	}
}

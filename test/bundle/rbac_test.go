package bundle_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// The operator's ServiceAccount, as config/default names it.
const operatorServiceAccount = "bitcoin-operator-controller-manager"

// TestBundleRBAC keeps the two RBAC layouts made from the same +kubebuilder:rbac markers
// in step. config/default (make deploy) binds config/rbac/role.yaml cluster-wide;
// config/manifests binds it with a RoleBinding, so the bundle's CSV must list exactly
// its rules, with the leader election's, under `permissions`, which OLM grants only in
// the namespaces the operator serves. `clusterPermissions` holds only the cluster-scoped
// reviews the metrics endpoint's authentication and authorization make.
func TestBundleRBAC(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir("../../bundle")
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	spec := bundle.CSV.Spec.InstallStrategy.StrategySpec

	manager := readRules(t, "../../config/rbac/role.yaml")
	leader := readRules(t, "../../config/rbac/leader_election_role.yaml")
	metricsAuth := readRules(t, "../../config/rbac/metrics_auth_role.yaml")

	checkPermissions(t, "permissions", spec.Permissions, append(manager, leader...))
	checkPermissions(t, "clusterPermissions", spec.ClusterPermissions, metricsAuth)
}

func checkPermissions(t *testing.T, field string, got []v1alpha1.StrategyDeploymentPermissions, want []rbacv1.PolicyRule) {
	t.Helper()
	if len(got) != 1 || got[0].ServiceAccountName != operatorServiceAccount {
		t.Fatalf("the CSV's %s: want one entry, for %s; got %d: run make bundle", field, operatorServiceAccount, len(got))
	}
	have, need := ruleSet(got[0].Rules), ruleSet(want)
	for _, r := range slices.Sorted(maps.Keys(need)) {
		if !have[r] {
			t.Errorf("the CSV's %s lack %s: run make bundle", field, r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(have)) {
		if !need[r] {
			t.Errorf("the CSV's %s have %s, which config/rbac does not grant there", field, r)
		}
	}
}

// readRules reads the rules of the role in a config/rbac file.
func readRules(t *testing.T, path string) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole // a Role's rules read the same
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(role.Rules) == 0 {
		t.Fatalf("%s has no rules", path)
	}
	return role.Rules
}

// ruleSet flattens rules into one "verb group/resource" string per permission, so
// that the same grant split or ordered differently compares equal.
func ruleSet(rules []rbacv1.PolicyRule) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		for _, v := range r.Verbs {
			for _, g := range r.APIGroups {
				if g == "" {
					g = "core"
				}
				for _, res := range r.Resources {
					names := "*"
					if len(r.ResourceNames) > 0 {
						names = strings.Join(slices.Sorted(slices.Values(r.ResourceNames)), ",")
					}
					out[v+" "+g+"/"+res+" "+names] = true
				}
			}
			for _, u := range r.NonResourceURLs {
				out[v+" "+u] = true
			}
		}
	}
	return out
}

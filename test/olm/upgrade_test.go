//go:build olm

package olm

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	operatorsv2 "github.com/operator-framework/api/pkg/operators/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// TestUpgrade installs 0.1.0 from a catalog that also serves 0.1.1 (which replaces
// it), with manual approval, and approves the upgrade while a network is rolling its
// pods: OLM holds it while the operator's OperatorCondition says Upgradeable=False,
// and completes it once the rollout is done and the operator says True. 0.1.0 runs the
// operator of previousRelease, whose chart deleted the volumes with the network: a
// network that was settled throughout keeps its StatefulSet and pods, and 0.1.1 only
// moves its StatefulSet from whenDeleted Delete to Retain (and writes its status), so
// its claims lose their owner reference and would outlive the network.
func TestUpgrade(t *testing.T) {
	dumpOnFailure(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := upgradeNS
	createNamespace(t, ns)
	createOperatorGroup(t, ns, nil)
	subscribe(t, ns, upgradeCatalog, operatorsv1alpha1.ApprovalManual, csv010)
	approve(t, ns, csv010)
	expectSucceeded(t, ns, csv010)

	testkit.By(t, "operator 0.1.0 ("+previousRelease[:7]+") runs two networks, and says it may be upgraded")
	previous := buildPrevious(t)
	op010 := startBinaryAsDeployment(t, ns, csv010, cmp.Or(previous, manager))
	kept := testkit.CreateNetwork(t, k8s, ns, "kept", 3)
	rolling := testkit.CreateNetwork(t, k8s, ns, "rolling", 2)
	expectConverged(t, kept, 3)
	expectConverged(t, rolling, 2)
	if previous != "" {
		g.Eventually(func(g Gomega) {
			g.Expect(retention(g, kept)).To(Equal("Delete/Retain"), "0.1.0's chart: the volumes go with the network")
			g.Expect(claimOwners(g, kept)).To(HaveLen(3))
			g.Expect(claimOwners(g, kept)).To(HaveEach("StatefulSet"))
		}, olmTimeout, interval).Should(Succeed())
	}
	expectUpgradeable(t, ns, csv010, metav1.ConditionTrue, "")
	g.Eventually(func(g Gomega) { installPlanFor(g, ns, csv011) }, olmTimeout, interval).Should(Succeed(),
		"OLM offers 0.1.1 for approval")
	keptSts, keptPods := statefulSetUID(g, kept), podUIDs(g, kept)
	since := time.Now()

	testkit.By(t, "a rollout that cannot finish (no Node takes pods) makes the operator say Upgradeable=False")
	setSchedulable(t, false)
	g.Expect(k8s.Patch(ctx, rolling, client.RawPatch(types.MergePatchType,
		[]byte(`{"spec":{"image":"bitcoin/bitcoin:28.0"}}`)))).To(Succeed())
	expectUpgradeable(t, ns, csv010, metav1.ConditionFalse, ns+"/rolling")

	testkit.By(t, "OLM holds the approved upgrade")
	approve(t, ns, csv011)
	held := func(g Gomega) {
		next := getCSV(g, ns, csv011)
		g.Expect(next.Status.Phase).To(Equal(operatorsv1alpha1.CSVPhasePending))
		g.Expect(next.Status.Reason).To(Equal(operatorsv1alpha1.CSVReasonOperatorConditionNotUpgradeable))
		g.Expect(next.Status.Message).To(ContainSubstring(ns + "/rolling"))
		// OLM marks 0.1.0 Replacing at once, but leaves its Deployment as it is.
		g.Expect(getCSV(g, ns, csv010).Status.Phase).To(BeElementOf(operatorsv1alpha1.CSVPhaseSucceeded, operatorsv1alpha1.CSVPhaseReplacing))
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: deploymentName}, dep)).To(Succeed())
		g.Expect(envValue(dep.Spec.Template.Spec.Containers[0].Env, controller.OperatorConditionEnvVar)).To(Equal(csv010))
	}
	g.Eventually(held, olmTimeout, interval).Should(Succeed())
	g.Consistently(held, 5*time.Second, interval).Should(Succeed())

	testkit.By(t, "once the rollout is done, the operator says True and OLM completes the upgrade")
	setSchedulable(t, true)
	expectConverged(t, rolling, 2)
	expectUpgradeable(t, ns, csv010, metav1.ConditionTrue, "")
	expectSucceeded(t, ns, csv011)
	g.Eventually(func(g Gomega) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: csv010}, &operatorsv1alpha1.ClusterServiceVersion{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "0.1.0 is gone: %v", err)
	}, olmTimeout, interval).Should(Succeed())
	op010.expectNothingForbidden(t)
	op010.stop()

	testkit.By(t, "operator 0.1.1 takes over: the settled network's volumes move to Retain, and no node restarts")
	op011 := startAsDeployment(t, ns, csv011)
	expectUpgradeable(t, ns, csv011, metav1.ConditionTrue, "")
	expectConverged(t, kept, 3)
	g.Eventually(func(g Gomega) {
		g.Expect(retention(g, kept)).To(Equal("Retain/Retain"))
		g.Expect(claimOwners(g, kept)).To(BeEmpty(), "the StatefulSet controller let go of the claims")
	}, olmTimeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(statefulSetUID(g, kept)).To(Equal(keptSts))
		g.Expect(podUIDs(g, kept)).To(Equal(keptPods))
		// The retention policy, and the status fields 0.1.0 did not know (status.image).
		g.Expect(writesTo(g, ns, "kept", since)).To(HaveEach(BeElementOf(
			"patch statefulsets/ kept-sts", "patch bitcoinnetworks/status kept")))
	}, 5*time.Second, interval).Should(Succeed())
	if previous != "" {
		g.Expect(writesTo(g, ns, "kept", since)).To(ContainElement("patch statefulsets/ kept-sts"))
	}
	g.Expect(writesTo(g, ns, "rolling", since)).NotTo(BeEmpty(), "the audit log records the operator's writes")
	op011.expectNothingForbidden(t)
	op011.stop()

	uninstall(t, ns, csv011, kept)
}

// approve approves the InstallPlan of the Subscription that installs csv, until OLM
// has created csv. OLM may replace an InstallPlan that waits for approval with a new
// one when it resolves again, so the plan to approve is the one the Subscription
// names now.
func approve(t *testing.T, namespace, csv string) {
	t.Helper()
	testkit.By(t, "approving the InstallPlan of "+csv)
	ctx := context.Background()
	NewWithT(t).Eventually(func(g Gomega) {
		sub := &operatorsv1alpha1.Subscription{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: packageName}, sub)).To(Succeed())
		g.Expect(sub.Status.InstallPlanRef).NotTo(BeNil())
		plan := &operatorsv1alpha1.InstallPlan{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sub.Status.InstallPlanRef.Name}, plan)).To(Succeed())
		g.Expect(plan.Spec.ClusterServiceVersionNames).To(ContainElement(csv))
		g.Expect(plan.Spec.Approval).To(Equal(operatorsv1alpha1.ApprovalManual))
		if !plan.Spec.Approved {
			g.Expect(k8s.Patch(ctx, plan, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"approved":true}}`)))).To(Succeed())
		}
		getCSV(g, namespace, csv)
	}, olmTimeout, interval).Should(Succeed())
}

// installPlanFor returns the InstallPlan that installs csv.
func installPlanFor(g Gomega, namespace, csv string) *operatorsv1alpha1.InstallPlan {
	var plans operatorsv1alpha1.InstallPlanList
	g.Expect(k8s.List(context.Background(), &plans, client.InNamespace(namespace))).To(Succeed())
	for i := range plans.Items {
		if slices.Contains(plans.Items[i].Spec.ClusterServiceVersionNames, csv) {
			return &plans.Items[i]
		}
	}
	g.Expect(plans.Items).To(ContainElement(HaveField("Spec.ClusterServiceVersionNames", ContainElement(csv))))
	return nil
}

// expectUpgradeable waits until the operator's condition in csv's OperatorCondition
// has status and, for False, names the network.
func expectUpgradeable(t *testing.T, namespace, csv string, status metav1.ConditionStatus, network string) {
	t.Helper()
	testkit.By(t, fmt.Sprintf("%s's OperatorCondition says Upgradeable=%s", csv, status))
	NewWithT(t).Eventually(func(g Gomega) {
		oc := &operatorsv2.OperatorCondition{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: csv}, oc)).To(Succeed())
		c := meta.FindStatusCondition(oc.Spec.Conditions, operatorsv2.Upgradeable)
		g.Expect(c).NotTo(BeNil(), "the operator has set Upgradeable")
		g.Expect(c.Status).To(Equal(status))
		if status == metav1.ConditionFalse {
			g.Expect(c.Reason).To(Equal(controller.ReasonNetworksRolling))
			g.Expect(c.Message).To(ContainSubstring(network))
		}
	}, olmTimeout, interval).Should(Succeed())
}

// setSchedulable cordons or uncordons every Node.
func setSchedulable(t *testing.T, schedulable bool) {
	t.Helper()
	g := NewWithT(t)
	var nodes corev1.NodeList
	g.Expect(k8s.List(context.Background(), &nodes)).To(Succeed())
	for i := range nodes.Items {
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, !schedulable)
		g.Expect(k8s.Patch(context.Background(), &nodes.Items[i], client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	}
}

// retention is the network's StatefulSet's PVC retention policy, as
// "<whenDeleted>/<whenScaled>".
func retention(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) string {
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: n.Namespace, Name: n.Name + "-sts"}, sts)).To(Succeed())
	p := sts.Spec.PersistentVolumeClaimRetentionPolicy
	g.Expect(p).NotTo(BeNil())
	return string(p.WhenDeleted) + "/" + string(p.WhenScaled)
}

// claimOwners returns the kinds of the owners of the network's claims: the
// StatefulSet controller makes the StatefulSet own them under whenDeleted Delete.
func claimOwners(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) []string {
	var list corev1.PersistentVolumeClaimList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(n.Namespace))).To(Succeed())
	var kinds []string
	for _, pvc := range list.Items {
		if strings.HasPrefix(pvc.Name, "data-"+n.Name+"-sts-") {
			for _, o := range pvc.OwnerReferences {
				kinds = append(kinds, o.Kind)
			}
		}
	}
	return kinds
}

func statefulSetUID(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) types.UID {
	sts := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: n.Namespace, Name: n.Name + "-sts"}, sts)).To(Succeed())
	return sts.UID
}

func podUIDs(g Gomega, n *bitcoinv1alpha1.BitcoinNetwork) map[string]types.UID {
	var pods corev1.PodList
	g.Expect(k8s.List(context.Background(), &pods, client.InNamespace(n.Namespace),
		client.MatchingLabels{render.LabelInstance: n.Name})).To(Succeed())
	out := map[string]types.UID{}
	for _, p := range pods.Items {
		out[p.Name] = p.UID
	}
	return out
}

// writesTo returns the operator's write requests since a moment to the network named
// name and to its objects (named after it), events aside, from the audit log.
func writesTo(g Gomega, namespace, name string, since time.Time) []string {
	events, err := lc.WritesBy(operatorUser(namespace), since, time.Time{})
	g.Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, e := range events {
		// Events report on the network rather than change it: a new operator
		// process tells once of each node it cannot reach (RPCFailed; kwok's pods run
		// no bitcoind here).
		if e.ObjectRef.Resource == "events" {
			continue
		}
		if e.ObjectRef.Namespace == namespace && (e.ObjectRef.Name == name || strings.HasPrefix(e.ObjectRef.Name, name+"-") || strings.HasPrefix(e.ObjectRef.Name, name+".")) {
			out = append(out, e.Verb+" "+e.ObjectRef.Resource+"/"+e.ObjectRef.Subresource+" "+e.ObjectRef.Name)
		}
	}
	return out
}

//go:build nodes

package fleet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
	"github.com/bitcoinops/bitcoin-operator/test/btcd"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

const (
	timeout  = 60 * time.Second
	interval = 200 * time.Millisecond
)

// TestFleet runs the Fleet against pods of a local control plane, without the
// operator: the test creates what the operator would, a network with
// status.secretName, its Secret and labelled pods.
func TestFleet(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	lc, err := cluster.Start(ctx, cluster.Options{Nodes: 1, Log: os.Stderr})
	g.Expect(err).NotTo(HaveOccurred())
	defer lc.Stop()
	root, err := cluster.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	out, err := lc.Kubectl(ctx, "apply", "--server-side", "-f", filepath.Join(root, "config", "crd", "bases")).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "%s", out)
	out, err = lc.Kubectl(ctx, "wait", "--for=condition=Established", "crd/bitcoinnetworks.bitcoin.bitcoinops.io").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "%s", out)
	k8s, err := client.New(lc.Config, client.Options{})
	g.Expect(err).NotTo(HaveOccurred())

	createNetwork(g, k8s, "doubles", "doubles-rpc", "alice", "pw-doubles")
	createNetwork(g, k8s, "real", "real-rpc", "bob", "pw-real")
	for _, name := range []string{"doubles-0", "doubles-1"} {
		createPod(g, k8s, name, "doubles")
	}
	createPod(g, k8s, "real-0", "real")
	// Another network's pod, which no backend of these fleets may take.
	createPod(g, k8s, "other-0", "other")

	var nw bitcointest.Network
	doubles, err := Start(ctx, Options[*bitcointest.Node]{
		Config: lc.Config, Namespace: "default", Network: "doubles", Start: Doubles(&nw), Log: os.Stderr,
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer doubles.Stop()
	bin, err := btcd.Binary()
	g.Expect(err).NotTo(HaveOccurred())
	real, err := Start(ctx, Options[*btcd.Node]{
		Config: lc.Config, Namespace: "default", Network: "real", Start: Btcd(bin, t.TempDir()), Log: os.Stderr,
	})
	g.Expect(err).NotTo(HaveOccurred())
	defer real.Stop()

	// Each pod's node answers on the pod's IP with its network's credentials.
	g.Eventually(doubles.Nodes, timeout, interval).Should(HaveLen(2))
	ip0 := podIP(g, k8s, "doubles-0")
	expectAnswers(g, ip0, "alice", "pw-doubles")
	expectAnswers(g, podIP(g, k8s, "doubles-1"), "alice", "pw-doubles")
	g.Eventually(real.Nodes, timeout, interval).Should(HaveLen(1))
	g.Eventually(func(g Gomega) { expectAnswers(g, podIP(g, k8s, "real-0"), "bob", "pw-real") }, timeout, interval).Should(Succeed())

	// A deleted pod's node stops with it and frees the IP's ports. The pod goes as a
	// kubelet lets it go: kwok confirms the deletion. A deletion with no grace period
	// would leave kwok's own delete of the name pending, which then took the pod
	// created again below (kwok deletes by name).
	gone := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "doubles-0", Namespace: "default"}}
	g.Expect(k8s.Delete(ctx, gone)).To(Succeed())
	g.Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(gone), gone) }, timeout, interval).
		Should(MatchError(ContainSubstring("not found")))
	g.Eventually(doubles.Nodes, timeout, interval).Should(And(HaveLen(1), HaveKey("doubles-1")))
	g.Eventually(func() error {
		c := bitcoin.New(ip0+":18443", "alice", "pw-doubles")
		_, err := c.GetPeerInfo(ctx)
		return err
	}, timeout, interval).Should(MatchError(ContainSubstring("connection refused")))

	// A pod that comes back under the same name, as a StatefulSet's does, gets a node
	// again, on whatever IP it has now.
	createPod(g, k8s, "doubles-0", "doubles")
	g.Eventually(doubles.Nodes, timeout, interval).Should(And(HaveLen(2), HaveKey("doubles-0")))
	g.Eventually(func(g Gomega) { expectAnswers(g, podIP(g, k8s, "doubles-0"), "alice", "pw-doubles") }, timeout, interval).Should(Succeed())
}

func createNetwork(g Gomega, k8s client.Client, name, secret, user, password string) {
	ctx := context.Background()
	network := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bitcoin.bitcoinops.io/v1alpha1", "kind": "BitcoinNetwork",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{"nodes": int64(0)},
	}}
	g.Expect(k8s.Create(ctx, network)).To(Succeed())
	g.Expect(unstructured.SetNestedField(network.Object, secret, "status", "secretName")).To(Succeed())
	g.Expect(k8s.Status().Update(ctx, network)).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: "default"},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: user, corev1.BasicAuthPasswordKey: password},
	})).To(Succeed())
}

func createPod(g Gomega, k8s client.Client, name, network string) {
	g.Expect(k8s.Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{
			render.LabelManagedBy: "bitcoin-operator", render.LabelInstance: network,
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "bitcoind", Image: "bitcoind"}}},
	})).To(Succeed())
}

func podIP(g Gomega, k8s client.Client, name string) string {
	pod := &corev1.Pod{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, pod)).To(Succeed())
	g.Expect(pod.Status.PodIP).NotTo(BeEmpty())
	return pod.Status.PodIP
}

// expectAnswers checks that a Bitcoin Core RPC server on ip takes exactly these
// credentials.
func expectAnswers(g Gomega, ip, user, password string) {
	ctx := context.Background()
	c := bitcoin.New(ip+":18443", user, password)
	_, err := c.GetBlockchainInfo(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	wrong := bitcoin.New(ip+":18443", user, password+"x")
	_, err = wrong.GetBlockchainInfo(ctx)
	g.Expect(errors.Is(err, bitcoin.ErrUnauthorized)).To(BeTrue(), "%v", err)
}

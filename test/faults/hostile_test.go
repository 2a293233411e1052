//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

const (
	// hugeAnswer is what each pod of the huge network sends per call: 32 times the
	// operator's bound on an answer.
	hugeAnswer = 64 << 20
	// slowAnswer is just inside the operator's 5 s call timeout.
	slowAnswer = 4500 * time.Millisecond
	// healthyTimeout is how soon a healthy network beside the hostile ones must be
	// Connected; alone it takes a few seconds.
	healthyTimeout = 30 * time.Second
)

// Three tenants' networks are hostile: one answers every call with 64 MiB of valid
// JSON, one answers just inside the call timeout, one resets every connection. A
// healthy network created beside them is wired and Connected in time, and the
// operator's peak memory stays far below its container's limit.
func TestHostileTenants(t *testing.T) {
	g := NewWithT(t)
	r := startReplica(t, "hostile")
	hostile := map[string]func(*testing.T, *bitcoinv1alpha1.BitcoinNetwork){
		"huge":  func(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork) { startFleet(t, n, fleet.HugeAnswers(hugeAnswer)) },
		"reset": func(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork) { startFleet(t, n, fleet.ResetConnections) },
		"slow": func(t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork) {
			startFleet(t, n, fleet.SlowDoubles(&bitcointest.Network{}, slowAnswer))
		},
	}
	var networks []*bitcoinv1alpha1.BitcoinNetwork
	for name, start := range hostile {
		n := testkit.CreateNetwork(t, k8s, newNamespace(t), name, 5)
		start(t, n)
		networks = append(networks, n)
	}
	for _, n := range networks {
		expectAvailable(g, n, convergeTimeout)
	}
	testkit.By(t, "the hostile networks are asked, and fail or answer slowly")
	g.Eventually(func() string { return events(g, "RPCFailed") + events(g, "RPCSlow") }, convergeTimeout, interval).Should(And(
		ContainSubstring("exceeds"), ContainSubstring("reset"), ContainSubstring("to answer (more than")))

	testkit.By(t, "a healthy network beside them is wired and Connected in time")
	created := time.Now()
	healthy := testkit.CreateNetwork(t, k8s, newNamespace(t), "healthy", 3)
	world := &bitcointest.Network{}
	startFleet(t, healthy, fleet.Doubles(world))
	g.Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(getNetwork(g, healthy).Status.Conditions, bitcoinv1alpha1.ConditionConnected)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(BeEquivalentTo("True"))
		g.Expect(world.Connected()).To(BeTrue())
	}, healthyTimeout, interval).Should(Succeed())
	t.Logf("The healthy network was Connected %.1f s after it was created", time.Since(created).Seconds())

	testkit.By(t, "the operator's peak memory stays far below its limit")
	peak := peakRSS(g, r)
	limit, err := cluster.OperatorMemoryLimit()
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("The operator's peak resident memory: %d MiB (limit %d MiB)", peak>>20, limit>>20)
	g.Expect(peak).To(BeNumerically("<", limit/2))
}

// startFleet runs a backend on each pod's IP of the network while the test runs.
func startFleet[B fleet.Backend](t *testing.T, n *bitcoinv1alpha1.BitcoinNetwork, start fleet.Factory[B]) {
	f, err := fleet.Start(context.Background(), fleet.Options[B]{
		Config: lc.Config, Namespace: n.Namespace, Network: n.Name, Start: start, Log: os.Stderr,
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	t.Cleanup(f.Stop)
}

// events returns the messages of the operator's events of a reason, in every
// namespace, one per line.
func events(g Gomega, reason string) string {
	out, err := lc.Kubectl(context.Background(), "get", "events", "-A", "--field-selector", "reason="+reason,
		"-o", "custom-columns=MESSAGE:.message", "--no-headers").Output()
	g.Expect(err).NotTo(HaveOccurred())
	return string(out)
}

// peakRSS reads the operator process's peak resident memory (VmHWM).
func peakRSS(g Gomega, r *replica) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.process().Pid()))
	g.Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			g.Expect(err).NotTo(HaveOccurred())
			return kb << 10
		}
	}
	g.Expect("VmHWM").To(BeEmpty(), "no VmHWM in /proc/<pid>/status")
	return 0
}

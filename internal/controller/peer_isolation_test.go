package controller

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// Networks whose nodes answer slowly hold no reconcile worker: a network created beside
// as many of them as the suite has workers is wired as if it were alone. (When rounds
// ran on the workers, each slow network held one for a minute while it was wired.)
func TestSlowNetworksDoNotDelayOthers(t *testing.T) {
	g := NewWithT(t)
	const slowAnswer = 4 * time.Second // within the client's 5 s timeout, over slowCall
	var slow []*peerNet
	for i := range suiteWorkers {
		p := newPeerNet(t, fmt.Sprintf("slow-%d", i), 3)
		p.startNodes(0, 3)
		for _, d := range p.doubles {
			d.SetLatency(slowAnswer)
		}
		slow = append(slow, p)
	}

	testkit.By(t, "a healthy network beside them is Connected as soon as alone")
	healthy := newPeerNet(t, "healthy", 3)
	healthy.startNodes(0, 3)
	g.Eventually(func(g Gomega) {
		c := healthy.condition(g, bitcoinv1alpha1.ConditionConnected)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	}, 2*slowAnswer+2*time.Second, interval).Should(Succeed())

	testkit.By(t, "the slow nodes are named in an event, once each")
	g.Eventually(func(g Gomega) {
		g.Expect(events(g, slow[0].network)).To(ContainElement(MatchRegexp(
			`^Warning RPCSlow: Node slow-0-sts-\d at [0-9.]+:18443 took [0-9.]+s to answer \(more than 2.5s\); asking it less often`)))
	}, timeout, interval).Should(Succeed())
}

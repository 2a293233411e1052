package controller

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestRetriesBackOffPerNode(t *testing.T) {
	g := NewWithT(t)
	n := &rpcLink{}
	now := time.Now()
	g.Expect(n.due(now)).To(BeTrue())
	g.Expect(n.failed(errors.New("refused"), now)).To(BeTrue(), "the first failure is news")
	g.Expect(n.retryAt.Sub(now)).To(BeNumerically("~", retryBase, retryBase/5))
	g.Expect(n.due(now)).To(BeFalse())
	g.Expect(n.failed(errors.New("refused"), now)).To(BeFalse(), "the same failure again is not")
	g.Expect(n.retryAt.Sub(now)).To(BeNumerically(">=", 2*retryBase))
	g.Expect(n.failed(errors.New("timeout"), now)).To(BeTrue(), "a different failure is")
	for range 20 {
		n.failed(errors.New("timeout"), now)
	}
	g.Expect(n.retryAt.Sub(now)).To(BeNumerically("<=", retryMax*6/5))
	g.Expect(n.answered(answer{})).To(BeTrue())
	g.Expect(n.due(now)).To(BeTrue())
	g.Expect(n.answered(answer{})).To(BeFalse())
}

func TestAFailureThatDiffersOnlyInAPortIsNoNews(t *testing.T) {
	g := NewWithT(t)
	n := &rpcLink{}
	g.Expect(n.failed(errors.New("read tcp 127.0.0.1:41234->127.30.0.1:18443: connection reset by peer"), time.Now())).To(BeTrue())
	g.Expect(n.failed(errors.New("read tcp 127.0.0.1:41302->127.30.0.1:18443: connection reset by peer"), time.Now())).To(BeFalse(),
		"the same failure from another local port")
	g.Expect(n.failed(errors.New("dial tcp 127.30.0.1:18443: connect: connection refused"), time.Now())).To(BeTrue())
}

func TestASlowNodeBacksOffAndKeepsItsAnswer(t *testing.T) {
	g := NewWithT(t)
	n := &rpcLink{}
	now := time.Now()
	g.Expect(n.skipped().err).To(MatchError(errNotAsked), "a node never heard has no answer to keep")

	slow := answer{added: []string{"127.30.0.2:18444"}, slow: 3 * time.Second}
	g.Expect(n.answeredSlowly(slow, now)).To(BeTrue(), "slowness is news once")
	g.Expect(n.due(now)).To(BeFalse(), "a slow node is asked less often")
	g.Expect(n.answeredSlowly(slow, now)).To(BeFalse())
	kept := n.skipped()
	g.Expect(kept.err).NotTo(HaveOccurred(), "its conditions go on from its last answer")
	g.Expect(kept.added).To(Equal(slow.added))
	g.Expect(kept.skipped).To(BeTrue())

	g.Expect(n.answered(answer{})).To(BeTrue(), "an answer in time ends the trouble")
	g.Expect(n.answeredSlowly(slow, now)).To(BeTrue())
}

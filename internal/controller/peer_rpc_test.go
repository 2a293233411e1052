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
	g.Expect(n.succeeded()).To(BeTrue())
	g.Expect(n.due(now)).To(BeTrue())
	g.Expect(n.succeeded()).To(BeFalse())
}

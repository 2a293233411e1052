package bitcoin

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/sync/semaphore"
)

// withBudget swaps the process's answer budget for one of n chunks during a test.
func withBudget(t *testing.T, chunks int64) *semaphore.Weighted {
	old := answerBudget
	answerBudget = semaphore.NewWeighted(chunks * budgetChunk)
	t.Cleanup(func() { answerBudget = old })
	return answerBudget
}

// Answers being read never hold more than the budget: while it is taken, a call waits
// (until its context ends), and every call gives back what it took.
func TestAnswersStayWithinTheBudget(t *testing.T) {
	g := NewWithT(t)
	budget := withBudget(t, 4)

	call := func(ctx context.Context, body string) error {
		b := budgeted(ctx, strings.NewReader(body))
		defer b.release()
		var peers []Peer
		return decodeResponse(200, b, &peers)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			err := call(context.Background(), `{"result":[],"error":null,"id":1}`)
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
	wg.Wait()
	g.Expect(budget.TryAcquire(4*budgetChunk)).To(BeTrue(), "every call gave its budget back")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := call(ctx, `{"result":[],"error":null,"id":1}`)
	g.Expect(err).To(MatchError(ContainSubstring("waiting for memory to read the answer")), "the budget is all taken")
	budget.Release(4 * budgetChunk)

	// An answer at the bound takes as much budget as it has bytes, chunk by chunk.
	withBudget(t, MaxResponseBytes/budgetChunk-1)
	ctx, cancel = context.WithTimeout(context.Background(), time.Second) // to read 2 MiB on a busy machine
	defer cancel()
	b := budgeted(ctx, &endless{})
	var peers []Peer
	g.Expect(decodeResponse(200, b, &peers)).To(MatchError(ContainSubstring("waiting for memory")))
	g.Expect(b.held).To(BeEquivalentTo(MaxResponseBytes - budgetChunk))
	b.release()
}

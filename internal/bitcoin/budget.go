package bitcoin

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/semaphore"
)

// AnswersInFlightBytes bounds the bytes of answers being read at once, over every call
// the operator makes. The bound on one answer (MaxResponseBytes) times the calls that
// may run at once would let a fleet of hostile nodes make the operator hold over
// 100 MiB of answers, and several times that while decoding them. A call takes budget
// as its answer's bytes arrive, a chunk at a time, and gives it back once the answer
// is decoded: a node that sends much waits for budget, turns slow and backs off, and
// the operator's memory does not depend on what the pods send. A usual answer, a few
// KiB, takes one chunk.
const AnswersInFlightBytes = 16 << 20

// budgetChunk is how much budget a reader takes at a time.
const budgetChunk = 64 << 10

// answerBudget is the process's budget; tests swap it for a smaller one.
var answerBudget = semaphore.NewWeighted(AnswersInFlightBytes)

// budgetedBody reads an answer within the budget: it never holds more of the answer's
// bytes unread or undecoded than the budget it took.
type budgetedBody struct {
	ctx    context.Context
	r      io.Reader
	budget *semaphore.Weighted
	held   int64 // budget taken
	read   int64 // bytes read
}

func budgeted(ctx context.Context, r io.Reader) *budgetedBody {
	return &budgetedBody{ctx: ctx, r: r, budget: answerBudget}
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	if b.read == b.held {
		if err := b.budget.Acquire(b.ctx, budgetChunk); err != nil {
			return 0, fmt.Errorf("waiting for memory to read the answer: %w", err)
		}
		b.held += budgetChunk
	}
	n, err := b.r.Read(p[:min(int64(len(p)), b.held-b.read)])
	b.read += int64(n)
	return n, err
}

// release gives the budget back; the answer must be decoded by then.
func (b *budgetedBody) release() {
	if b.held > 0 {
		b.budget.Release(b.held)
		b.held = 0
	}
}

package main

import (
	"math"
	"runtime/debug"
	"testing"

	. "github.com/onsi/gomega"
)

func TestMemoryLimitIsNinetyPercentOfTheContainers(t *testing.T) {
	g := NewWithT(t)
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv(MemoryLimitEnvVar, "268435456") // 256Mi

	g.Expect(setMemoryLimit()).To(BeEquivalentTo(241591910))
	g.Expect(debug.SetMemoryLimit(-1)).To(BeEquivalentTo(241591910))
}

func TestGOMEMLIMITWins(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("GOMEMLIMIT", "100MiB") // read by the runtime at start: here, as if it had been
	t.Setenv(MemoryLimitEnvVar, "268435456")
	before := debug.SetMemoryLimit(-1)

	g.Expect(setMemoryLimit()).To(Equal(before))
	g.Expect(debug.SetMemoryLimit(-1)).To(Equal(before))
}

func TestNoLimitLeavesTheRuntimesDefault(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv(MemoryLimitEnvVar, "")
	before := debug.SetMemoryLimit(-1)

	g.Expect(setMemoryLimit()).To(BeZero())
	g.Expect(debug.SetMemoryLimit(-1)).To(Equal(before))
}

func TestInvalidLimitNamesTheVariable(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("GOMEMLIMIT", "")
	for _, value := range []string{"256Mi", "-1", "0"} {
		t.Setenv(MemoryLimitEnvVar, value)
		_, err := setMemoryLimit()
		g.Expect(err).To(MatchError(ContainSubstring("invalid MEMORY_LIMIT %q", value)))
	}
}

package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
)

// MemoryLimitEnvVar carries the container's memory limit in bytes, as the
// Deployment's downward API gives it (resourceFieldRef limits.memory).
const MemoryLimitEnvVar = "MEMORY_LIMIT"

// softLimitShare is the share of the container's limit the Go runtime keeps the
// heap under. The rest is for what the limit counts and the heap does not:
// goroutine stacks, the runtime's own structures, fragmentation.
const softLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit from the container's
// unless GOMEMLIMIT sets one, and returns it (0: none). Without one the heap grows to
// twice what is live between collections (GOGC=100) whatever the container allows,
// so a burst of garbage, such as wiring a thousand networks, could reach the OOM
// killer; with one the runtime collects more often near the limit instead.
func setMemoryLimit() (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), nil // the runtime read it at start
	}
	value := os.Getenv(MemoryLimitEnvVar)
	if value == "" {
		return 0, nil
	}
	limit, err := strconv.ParseInt(value, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("invalid %s %q: it must be a number of bytes", MemoryLimitEnvVar, value)
	}
	soft := int64(float64(limit) * softLimitShare)
	debug.SetMemoryLimit(soft)
	return soft, nil
}

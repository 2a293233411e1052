package topology

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
)

func address(slot int) string {
	return fmt.Sprintf("10.244.%d.%d:8333", slot/250, slot%250+1)
}

// all is every slot of n ready.
func all(n int) map[int]string {
	ready := make(map[int]string, n)
	for i := range n {
		ready[i] = address(i)
	}
	return ready
}

func values(ready map[int]string) []string {
	var out []string
	for _, a := range ready {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

func TestPeersIsAFullMeshUpToNineNodes(t *testing.T) {
	g := NewWithT(t)
	for n := 1; n <= 9; n++ {
		for _, ready := range []map[int]string{all(n), some(n, 0.5, rand.New(rand.NewPCG(uint64(n), 1)))} {
			nodes := values(ready)
			for node, added := range Peers(n, ready) {
				want := slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return s == node })
				g.Expect(added).To(Equal(want), "n=%d node=%s", n, node)
			}
		}
	}
}

func TestPeersIsBoundedConnectedAndShallow(t *testing.T) {
	sizes := []int{257, 300, 1000}
	for n := 1; n <= 100; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			g := NewWithT(t)
			ready := all(n)
			peers := Peers(n, ready)
			g.Expect(peers).To(HaveLen(n))
			expectBounded(g, peers)
			bound := max(1, int(math.Ceil(math.Log2(float64(n)))))
			g.Expect(diameter(values(ready), peers)).To(BeNumerically("<=", bound))
		})
	}
}

// With only some nodes ready, in any pattern, the ready nodes stay connected, each
// adds at most 8 and is added by at most 8, and the diameter stays small.
func TestPeersOfSomeReadyNodesStayConnectedAndShallow(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	for _, n := range []int{10, 100, 1000} {
		worst := 0
		for _, pattern := range []struct {
			name  string
			ready func() map[int]string
		}{
			{"first 10%", func() map[int]string { return prefix(n, n/10) }},
			{"first half", func() map[int]string { return prefix(n, n/2) }},
			{"all but the last", func() map[int]string { return prefix(n, n-1) }},
			{"random 10%", func() map[int]string { return some(n, 0.1, rng) }},
			{"random half", func() map[int]string { return some(n, 0.5, rng) }},
			{"random 90%", func() map[int]string { return some(n, 0.9, rng) }},
		} {
			// Each diameter at 1,000 nodes is a BFS from every node: one sample each.
			samples := map[bool]int{true: 1, false: 3}[n >= 1000]
			for range samples {
				g := NewWithT(t)
				ready := pattern.ready()
				peers := Peers(n, ready)
				g.Expect(peers).To(HaveLen(len(ready)))
				expectBounded(g, peers)
				d := diameter(values(ready), peers)
				g.Expect(d).NotTo(Equal(math.MaxInt), "n=%d %s: the ready nodes are not connected", n, pattern.name)
				t.Logf("n=%d %s (%d ready): diameter %d", n, pattern.name, len(ready), d)
				worst = max(worst, d)
			}
		}
		all := diameter(values(all(n)), Peers(n, all(n)))
		fmt.Printf("topology: %d nodes: diameter %d hops when all are ready, at most %d while some are\n", n, all, worst)
		// Twice the all-ready bound, plus a hop: what the patterns above stay within.
		g := NewWithT(t)
		g.Expect(worst).To(BeNumerically("<=", 2*int(math.Ceil(math.Log2(float64(n))))+1), "n=%d", n)
	}
}

// A node that turns ready changes the lists of at most 8 other nodes, by one entry
// added and at most one removed, whatever order the nodes turn ready in: the lists do
// not reshuffle as a Parallel StatefulSet's pods come up.
func TestOneNodeTurningReadyChangesFewLists(t *testing.T) {
	for _, n := range []int{10, 100, 1000} {
		for _, order := range []string{"in order", "random order"} {
			t.Run(fmt.Sprintf("%d %s", n, order), func(t *testing.T) {
				g := NewWithT(t)
				slots := make([]int, n)
				for i := range slots {
					slots[i] = i
				}
				if order == "random order" {
					rand.New(rand.NewPCG(uint64(n), 7)).Shuffle(n, func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
				}
				ready := map[int]string{}
				before := Peers(n, ready)
				churn, oldChurn := 0, 0
				oldBefore := byIndex(ready)
				for _, slot := range slots {
					ready[slot] = address(slot)
					after := Peers(n, ready)
					changedLists := 0
					for node, added := range after {
						if node == address(slot) {
							continue
						}
						plus, minus := len(difference(added, before[node])), len(difference(before[node], added))
						if plus+minus > 0 {
							changedLists++
						}
						g.Expect(plus).To(BeNumerically("<=", 1), "node %s gained %v", node, difference(added, before[node]))
						g.Expect(minus).To(BeNumerically("<=", 1), "node %s lost %v", node, difference(before[node], added))
						churn += plus + minus
					}
					g.Expect(changedLists).To(BeNumerically("<=", 8), "slot %d turning ready changed %d lists", slot, changedLists)
					churn += len(after[address(slot)])
					oldAfter := byIndex(ready)
					oldChurn += entriesChanged(oldBefore, oldAfter)
					before, oldBefore = after, oldAfter
				}
				fmt.Printf("topology: %d nodes turning ready %s: %d addnode entries added or removed (%d when indexing the ready nodes)\n",
					n, order, churn, oldChurn)
			})
		}
	}
}

func TestPeersIsDeterministic(t *testing.T) {
	g := NewWithT(t)
	ready := some(40, 0.5, rand.New(rand.NewPCG(1, 2)))
	g.Expect(Peers(40, ready)).To(Equal(Peers(40, ready)))
}

func TestPeersOfNoNodesIsEmpty(t *testing.T) {
	NewWithT(t).Expect(Peers(5, nil)).To(BeEmpty())
}

// A ready node beyond the slots (a pod on its way out while the network scales down)
// still gets peers and is reached.
func TestPeersWidenTheSlotsToHoldEveryReadyNode(t *testing.T) {
	g := NewWithT(t)
	ready := all(12)
	peers := Peers(10, ready)
	g.Expect(peers).To(HaveLen(12))
	g.Expect(diameter(values(ready), peers)).NotTo(Equal(math.MaxInt))
}

func expectBounded(g Gomega, peers map[string][]string) {
	inbound := map[string]int{}
	for node, added := range peers {
		g.Expect(len(added)).To(BeNumerically("<=", 8), node)
		g.Expect(added).NotTo(ContainElement(node))
		g.Expect(slices.IsSorted(added)).To(BeTrue(), node)
		g.Expect(slices.Compact(slices.Clone(added))).To(HaveLen(len(added)), "duplicates for %s", node)
		for _, p := range added {
			g.Expect(peers).To(HaveKey(p), "%s adds %s, which is not ready", node, p)
			inbound[p]++
		}
	}
	for node, count := range inbound {
		g.Expect(count).To(BeNumerically("<=", 8), "%s is added by %d nodes", node, count)
	}
}

func prefix(n, k int) map[int]string {
	ready := map[int]string{}
	for i := range min(k, n) {
		ready[i] = address(i)
	}
	return ready
}

func some(n int, share float64, rng *rand.Rand) map[int]string {
	ready := map[int]string{}
	for i := range n {
		if rng.Float64() < share {
			ready[i] = address(i)
		}
	}
	return ready
}

// byIndex is the topology as it was before it knew the slots: laid over the ready
// nodes in ordinal order, so that one node turning ready shifts every later index.
func byIndex(ready map[int]string) map[string][]string {
	slots := slices.Sorted(func(yield func(int) bool) {
		for s := range ready {
			if !yield(s) {
				return
			}
		}
	})
	indexed := make(map[int]string, len(slots))
	for i, s := range slots {
		indexed[i] = ready[s]
	}
	return Peers(len(slots), indexed)
}

func entriesChanged(before, after map[string][]string) int {
	changed := 0
	for node, added := range after {
		changed += len(difference(added, before[node])) + len(difference(before[node], added))
	}
	for node, added := range before {
		if _, ok := after[node]; !ok {
			changed += len(added)
		}
	}
	return changed
}

func difference(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// diameter returns the largest BFS distance of the undirected graph in which
// an added peer links both ways, or math.MaxInt if it is disconnected.
func diameter(nodes []string, peers map[string][]string) int {
	adjacent := map[string][]string{}
	for node, added := range peers {
		for _, peer := range added {
			adjacent[node] = append(adjacent[node], peer)
			adjacent[peer] = append(adjacent[peer], node)
		}
	}
	longest := 0
	for _, start := range nodes {
		distance := map[string]int{start: 0}
		queue := []string{start}
		for len(queue) > 0 {
			node := queue[0]
			queue = queue[1:]
			for _, next := range adjacent[node] {
				if _, seen := distance[next]; !seen {
					distance[next] = distance[node] + 1
					longest = max(longest, distance[next])
					queue = append(queue, next)
				}
			}
		}
		if len(distance) != len(nodes) {
			return math.MaxInt
		}
	}
	return longest
}

package topology

import (
	"fmt"
	"math"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
)

func addresses(n int) []string {
	nodes := make([]string, n)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("10.244.%d.%d:8333", i/250, i%250+1)
	}
	return nodes
}

func TestPeersIsAFullMeshUpToNineNodes(t *testing.T) {
	g := NewWithT(t)
	for n := 1; n <= 9; n++ {
		nodes := addresses(n)
		for node, added := range Peers(nodes) {
			want := slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return s == node })
			slices.Sort(want)
			g.Expect(added).To(Equal(want), "n=%d node=%s", n, node)
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
			nodes := addresses(n)
			peers := Peers(nodes)
			g.Expect(peers).To(HaveLen(n))
			for node, added := range peers {
				g.Expect(len(added)).To(BeNumerically("<=", 8), node)
				g.Expect(added).NotTo(ContainElement(node))
				g.Expect(slices.IsSorted(added)).To(BeTrue(), node)
				g.Expect(slices.Compact(slices.Clone(added))).To(HaveLen(len(added)), "duplicates for %s", node)
			}
			bound := max(1, int(math.Ceil(math.Log2(float64(n)))))
			g.Expect(diameter(nodes, peers)).To(BeNumerically("<=", bound))
		})
	}
}

func TestPeersIsDeterministic(t *testing.T) {
	g := NewWithT(t)
	nodes := addresses(40)
	g.Expect(Peers(nodes)).To(Equal(Peers(nodes)))
}

func TestPeersOfNoNodesIsEmpty(t *testing.T) {
	NewWithT(t).Expect(Peers(nil)).To(BeEmpty())
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

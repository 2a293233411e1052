package render

import (
	"testing"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// BenchmarkRender measures one render of the chart for a network: what a reconcile of
// a changed spec costs in CPU.
func BenchmarkRender(b *testing.B) {
	r, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	n := network("bench", 3, bitcoinv1alpha1.Regtest)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(n, Settings{}); err != nil {
			b.Fatal(err)
		}
	}
}

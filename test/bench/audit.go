package main

import (
	"fmt"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// namespaceWrites are the operator's write requests in one namespace, from the API
// server's audit log. The operator's own namespace holds its leader election Lease.
type namespaceWrites struct {
	count   int
	samples []string // a few of them, to say what they were
}

// writesByNamespace holds what operatorWrites found.
type writesByNamespace map[string]*namespaceWrites

// in returns the writes in a namespace: none when it has no entry.
func (w writesByNamespace) in(namespace string) namespaceWrites {
	if ns := w[namespace]; ns != nil {
		return *ns
	}
	return namespaceWrites{}
}

// operatorWrites counts the operator's writes received in [from, to], by namespace.
func operatorWrites(lc *cluster.Cluster, from, to time.Time) (writesByNamespace, error) {
	events, err := lc.OperatorWrites(from, to)
	writes := writesByNamespace{}
	for _, e := range events {
		w := writes[e.ObjectRef.Namespace]
		if w == nil {
			w = &namespaceWrites{}
			writes[e.ObjectRef.Namespace] = w
		}
		w.count++
		if len(w.samples) < 5 {
			w.samples = append(w.samples, fmt.Sprintf("%s %s/%s %s", e.Verb, e.ObjectRef.Resource, e.ObjectRef.Subresource, e.ObjectRef.Name))
		}
	}
	return writes, err
}

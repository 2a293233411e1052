package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// namespaceWrites are the operator's write requests in one namespace, from the API
// server's audit log, which records every write of the operator's ServiceAccount (and
// nothing else: see test/cluster's audit policy). The operator's own namespace holds
// its leader election Lease.
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
func operatorWrites(path string, from, to time.Time) (writesByNamespace, error) {
	writes := writesByNamespace{}
	f, err := os.Open(path)
	if err != nil {
		return writes, err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 4<<20)
	for scanner.Scan() {
		var e struct {
			Stage string `json:"stage"`
			Verb  string `json:"verb"`
			User  struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Resource, Namespace, Name, Subresource string
			} `json:"objectRef"`
			Received time.Time `json:"requestReceivedTimestamp"`
		}
		if json.Unmarshal(scanner.Bytes(), &e) != nil || e.Stage != "ResponseComplete" || e.User.Username != cluster.OperatorUser ||
			e.Received.Before(from) || e.Received.After(to) {
			continue
		}
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
	return writes, scanner.Err()
}

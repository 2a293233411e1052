package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// writeCounts are the operator's write requests in a time window, from the API server's
// audit log, which records every write of the operator's ServiceAccount (and nothing
// else: see test/cluster's audit policy).
type writeCounts struct {
	others  int      // everything but leader election
	leases  int      // Lease renewals of leader election
	samples []string // a few of the others, to say what they were
}

func operatorWrites(path string, from, to time.Time) (writeCounts, error) {
	var w writeCounts
	f, err := os.Open(path)
	if err != nil {
		return w, err
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
		if json.Unmarshal(scanner.Bytes(), &e) != nil || e.Stage != "ResponseComplete" || e.User.Username != cluster.OperatorUser {
			continue
		}
		if e.Received.Before(from) || e.Received.After(to) {
			continue
		}
		if e.ObjectRef.Resource == "leases" {
			w.leases++
			continue
		}
		w.others++
		if len(w.samples) < 5 {
			w.samples = append(w.samples, fmt.Sprintf("%s %s/%s %s/%s", e.Verb, e.ObjectRef.Resource, e.ObjectRef.Subresource, e.ObjectRef.Namespace, e.ObjectRef.Name))
		}
	}
	return w, scanner.Err()
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// auditLog reads the operator's write requests from the API server's audit log as it
// grows: each refresh reads only the lines written since the last, so that waiting for
// the operator to fall quiet costs the shared cores little even with 1,000 networks.
type auditLog struct {
	path string

	mu     sync.Mutex
	offset int64
	events []cluster.AuditEvent
}

func newAuditLog(path string) *auditLog { return &auditLog{path: path} }

// refresh reads the complete lines written since the last refresh.
func (a *auditLog) refresh() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		return err
	}
	// A line the API server is still writing waits for the next refresh.
	complete := bytes.LastIndexByte(data, '\n') + 1
	a.offset += int64(complete)
	for line := range bytes.Lines(data[:complete]) {
		var e struct {
			cluster.AuditEvent
			Stage string `json:"stage"`
		}
		if json.Unmarshal(line, &e) != nil || e.Stage != "ResponseComplete" || e.User.Username != cluster.OperatorUser {
			continue
		}
		a.events = append(a.events, e.AuditEvent)
	}
	return nil
}

// writes returns the operator's writes received in [from, to] after a refresh; a zero
// to means no upper bound.
func (a *auditLog) writes(from, to time.Time) (operatorWrites, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out operatorWrites
	for _, e := range a.events {
		if !e.Received.Before(from) && (to.IsZero() || !e.Received.After(to)) {
			out = append(out, e)
		}
	}
	return out, nil
}

// operatorWrites are write requests of the operator, from the audit log.
type operatorWrites []cluster.AuditEvent

// in returns the writes in one namespace. The operator's own namespace holds its leader
// election Lease.
func (w operatorWrites) in(namespace string) operatorWrites {
	var out operatorWrites
	for _, e := range w {
		if e.ObjectRef.Namespace == namespace {
			out = append(out, e)
		}
	}
	return out
}

// last returns when the last of the writes was received; zero when there is none.
func (w operatorWrites) last() time.Time {
	var t time.Time
	for _, e := range w {
		if e.Received.After(t) {
			t = e.Received
		}
	}
	return t
}

// samples names a few of the writes, to say what they were.
func (w operatorWrites) samples() []string {
	var out []string
	for _, e := range w[:min(len(w), 5)] {
		out = append(out, kindOf(e)+" "+e.ObjectRef.Name)
	}
	return out
}

// kindOf names a write by verb, resource and subresource: "patch bitcoinnetworks/status".
func kindOf(e cluster.AuditEvent) string {
	kind := e.Verb + " " + e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		kind += "/" + e.ObjectRef.Subresource
	}
	return kind
}

// WriteFigures break a size's writes until it settled down by kind. Events are counted
// apart from the other kinds, and so are the Lease renewals, which are the leader's in
// its own namespace and would be there without any network.
type WriteFigures struct {
	// Total counts every write in the size's namespace, events included.
	Total int `json:"total"`
	// ByKind counts the writes other than events by verb, resource and subresource.
	ByKind map[string]int `json:"byKind"`
	// Events counts the writes of events (creates, and patches of a repeated event).
	Events int `json:"events"`
	// LeaseWrites counts the leader's Lease renewals over the same time.
	LeaseWrites int `json:"leaseWrites"`
	// EventsPerNetwork is the largest and the mean number of event writes about one
	// network, every network of the size counted.
	EventsPerNetworkMax  int     `json:"eventsPerNetworkMax"`
	EventsPerNetworkMean float64 `json:"eventsPerNetworkMean"`
	// EventReasons counts the operator's events in the namespace by reason, each
	// occurrence of a repeated event counted, from the Events themselves.
	EventReasons map[string]int `json:"eventReasons"`
}

// writeFigures summarises the writes of a size's namespace, and the leader's Lease
// writes of the same time, for networks networks.
func writeFigures(inNamespace, leases operatorWrites, networks int) WriteFigures {
	f := WriteFigures{Total: len(inNamespace), ByKind: map[string]int{}, LeaseWrites: len(leases)}
	perNetwork := map[string]int{}
	for _, e := range inNamespace {
		if e.ObjectRef.Resource != "events" {
			f.ByKind[kindOf(e)]++
			continue
		}
		f.Events++
		// The recorder names an event <involved object>.<hex>: the network's name here.
		network, _, _ := strings.Cut(e.ObjectRef.Name, ".")
		perNetwork[network]++
	}
	for _, n := range perNetwork {
		f.EventsPerNetworkMax = max(f.EventsPerNetworkMax, n)
	}
	f.EventsPerNetworkMean = float64(f.Events) / float64(networks)
	return f
}

// kinds returns the kinds of writes, the most frequent first.
func (f WriteFigures) kinds() []string {
	var kinds []string
	for k := range f.ByKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if f.ByKind[kinds[i]] != f.ByKind[kinds[j]] {
			return f.ByKind[kinds[i]] > f.ByKind[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}

func (f WriteFigures) String() string {
	var parts []string
	for _, k := range f.kinds() {
		parts = append(parts, fmt.Sprintf("%d %s", f.ByKind[k], k))
	}
	return fmt.Sprintf("%d: %s, %d events", f.Total, strings.Join(parts, ", "), f.Events)
}

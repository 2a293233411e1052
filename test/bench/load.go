package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// LoadFigures hold the API server's own count of the requests it served while a size
// came up and settled, beside the operator's, so that the operator's share of the load
// shows.
type LoadFigures struct {
	// APIServerRequests and APIServerWrites are every user's requests, from the
	// increase of kube-apiserver's apiserver_request_total (writes: POST, PUT, PATCH,
	// APPLY, DELETE, DELETECOLLECTION).
	APIServerRequests int `json:"apiServerRequests"`
	APIServerWrites   int `json:"apiServerWrites"`
	// OperatorRequests are the operator's own requests, reads and watches included,
	// from the increase of its rest_client_requests_total.
	OperatorRequests int `json:"operatorRequests"`
	// OperatorWrites are the operator's writes in every namespace (its Lease renewals
	// included), from the audit log.
	OperatorWrites int `json:"operatorWrites"`
}

// requestCounts are counters read at one moment.
type requestCounts struct{ apiServer, apiServerWrites, operator float64 }

var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// readCounts reads kube-apiserver's request counter (as the admin) and the operator's
// client counter (its metrics endpoint, served over plain HTTP on loopback to the bench).
func readCounts(ctx context.Context, cs kubernetes.Interface, operatorMetrics string) (requestCounts, error) {
	var c requestCounts
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return c, fmt.Errorf("failed to read kube-apiserver's metrics: %w", err)
	}
	sumSeries(raw, "apiserver_request_total", func(labels string, v float64) {
		c.apiServer += v
		if writeVerbs[label(labels, "verb")] {
			c.apiServerWrites += v
		}
	})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, operatorMetrics, nil)
	if err != nil {
		return c, err
	}
	// A zero Transport has no proxy: the endpoint is on loopback.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return c, fmt.Errorf("failed to read the operator's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return c, err
	}
	sumSeries(body, "rest_client_requests_total", func(_ string, v float64) { c.operator += v })
	return c, nil
}

// since returns the increase from before to c, with the operator's writes of the same
// time.
func (c requestCounts) since(before requestCounts, operatorWrites int) LoadFigures {
	return LoadFigures{
		APIServerRequests: int(c.apiServer - before.apiServer),
		APIServerWrites:   int(c.apiServerWrites - before.apiServerWrites),
		OperatorRequests:  int(c.operator - before.operator),
		OperatorWrites:    operatorWrites,
	}
}

// sumSeries calls f with the labels and value of every sample of a counter in the
// Prometheus text format.
func sumSeries(text []byte, name string, f func(labels string, v float64)) {
	scanner := bufio.NewScanner(bytes.NewReader(text))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels, value := "", rest
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			labels, value = rest[1:end], rest[end+1:]
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			f(labels, v)
		}
	}
}

// label returns a label's value from a sample's label list.
func label(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

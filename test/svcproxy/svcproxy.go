// Package svcproxy stands in for what a process in a pod has and a process of the
// local control plane lacks: cluster DNS and kube-proxy. It is an HTTP CONNECT proxy
// on loopback that maps a Service's DNS name and port (<service>.<namespace>.svc, with
// or without .cluster.local) to a ready pod's IP and target port, read from the API,
// and connects the two.
//
// It never resolves a name: a name it cannot map, or an address outside 127.0.0.0/8,
// is refused. A Go client reaches it through HTTPS_PROXY=http://<Addr>: Go's
// http.ProxyFromEnvironment never proxies a loopback IP or localhost, so the client's
// other connections on this machine go direct; grpc-go (v1.76 and later) then sends
// the unresolved target name in the CONNECT request (docs/olm.md has the source lines).
package svcproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lookup maps a Service's name, namespace and port to the address of one of its
// endpoints, ip:port.
type Lookup func(ctx context.Context, namespace, name string, port int) (string, error)

// Proxy is a running proxy.
type Proxy struct {
	// Addr is where it listens: 127.0.0.1:<port>.
	Addr   string
	lookup Lookup
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	server *http.Server

	mu        sync.Mutex
	served    []string
	refused   []string
	forbidden []string
}

// Start serves the proxy on a free loopback port until Close.
func Start(lookup Lookup) (*Proxy, error) {
	return start(lookup, (&net.Dialer{Timeout: 10 * time.Second}).DialContext)
}

func start(lookup Lookup, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: l.Addr().String(), lookup: lookup, dial: dial}
	p.server = &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(l) }()
	return p, nil
}

// Close stops listening. Hijacked connections are not the server's: they end when
// either side closes.
func (p *Proxy) Close() { _ = p.server.Close() }

// Served lists the CONNECTs it served, as "name:port -> ip:port".
func (p *Proxy) Served() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.served...)
}

// Refused lists the requests it refused, with why: among them a Service's name
// before the Service has a ready endpoint.
func (p *Proxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Forbidden lists the refused requests that no lookup of a Service could serve: a
// name that would have to be looked up in DNS, an address outside loopback, a method
// other than CONNECT.
func (p *Proxy) Forbidden() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.forbidden...)
}

func (p *Proxy) handle(w http.ResponseWriter, r *http.Request) {
	target, status, err := p.route(r)
	if err != nil {
		why := fmt.Sprintf("%s %s: %v", r.Method, r.Host, err)
		p.record(&p.refused, why)
		if status != http.StatusBadGateway {
			p.record(&p.forbidden, why)
		}
		http.Error(w, err.Error(), status)
		return
	}
	up, err := p.dial(r.Context(), "tcp", target)
	if err != nil {
		p.record(&p.refused, fmt.Sprintf("CONNECT %s -> %s: %v", r.Host, target, err))
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = up.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.record(&p.served, r.Host+" -> "+target)
	if _, err := rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil || rw.Flush() != nil {
		_, _ = down.Close(), up.Close()
		return
	}
	pipe(down, rw.Reader, up)
}

// route says where a CONNECT request goes: the address of an endpoint of the Service
// its authority names.
func (p *Proxy) route(r *http.Request) (string, int, error) {
	if r.Method != http.MethodConnect {
		return "", http.StatusMethodNotAllowed, errors.New("only CONNECT is proxied")
	}
	namespace, name, port, err := ParseServiceAddress(r.Host)
	if err != nil {
		return "", http.StatusForbidden, err
	}
	target, err := p.lookup(r.Context(), namespace, name, port)
	if err != nil {
		return "", http.StatusBadGateway, err
	}
	host, _, err := net.SplitHostPort(target)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return "", http.StatusForbidden, fmt.Errorf("endpoint %s is not a loopback IP", target)
	}
	return target, 0, nil
}

// ParseServiceAddress reads <name>.<namespace>.svc[.cluster.local]:<port>, the form
// cluster DNS answers for a Service. Anything else is an error: it would have to be
// looked up.
func ParseServiceAddress(addr string) (namespace, name string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", 0, err
	}
	if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
		return "", "", 0, fmt.Errorf("%q: bad port %q", addr, p)
	}
	rest, ok := strings.CutSuffix(strings.TrimSuffix(host, ".cluster.local"), ".svc")
	labels := strings.Split(rest, ".")
	if !ok || len(labels) != 2 || labels[0] == "" || labels[1] == "" {
		return "", "", 0, fmt.Errorf("%q is not <service>.<namespace>.svc[.cluster.local]:<port>; nothing here looks names up", addr)
	}
	return labels[1], labels[0], port, nil
}

func (p *Proxy) record(list *[]string, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*list = append(*list, s)
}

// pipe copies between the client (whose first bytes may sit in buffered) and the
// endpoint until either side is done, then closes both.
func pipe(down net.Conn, buffered *bufio.Reader, up net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, buffered); done <- struct{}{} }()
	go func() { _, _ = io.Copy(down, up); done <- struct{}{} }()
	<-done
	_ = down.Close()
	_ = up.Close()
	<-done
}

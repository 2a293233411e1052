package svcproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestParseServiceAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"catalog.olm.svc:50051":               "olm/catalog:50051",
		"catalog.olm.svc.cluster.local:50051": "olm/catalog:50051",
		"catalog.olm.svc:0":                   "error",
		"catalog.olm:50051":                   "error", // search domains would be looked up
		"a.catalog.olm.svc:50051":             "error", // a pod's name, not a Service's
		"example.com:443":                     "error",
		"10.0.0.1:50051":                      "error",
		"catalog.olm.svc":                     "error",
	} {
		ns, name, port, err := ParseServiceAddress(addr)
		got := fmt.Sprintf("%s/%s:%d", ns, name, port)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s: %s, want %s (%v)", addr, got, want, err)
		}
	}
}

// TestProxyConnectsAServiceNameToItsEndpoint: a CONNECT to a Service's name reaches
// the address the lookup gave, with the name passed on unresolved.
func TestProxyConnectsAServiceNameToItsEndpoint(t *testing.T) {
	echo := echoServer(t)
	var asked []string
	p := startProxy(t, func(_ context.Context, ns, name string, port int) (string, error) {
		asked = append(asked, fmt.Sprintf("%s/%s:%d", ns, name, port))
		return echo, nil
	})
	c, status := connect(t, p, "CONNECT catalog.olm.svc:50051 HTTP/1.1\r\nHost: catalog.olm.svc:50051\r\n\r\n")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	_, _ = c.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	if len(asked) != 1 || asked[0] != "olm/catalog:50051" {
		t.Errorf("looked up %v", asked)
	}
	if s := p.Served(); len(s) != 1 || s[0] != "catalog.olm.svc:50051 -> "+echo {
		t.Errorf("served %v", s)
	}
}

// TestProxyRefuses what would need a name lookup or leave loopback, without asking
// the lookup for anything but a Service.
func TestProxyRefuses(t *testing.T) {
	for _, tc := range []struct {
		request  string
		endpoint string
		status   int
	}{
		{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "", http.StatusForbidden},
		{"CONNECT 10.0.0.1:50051 HTTP/1.1\r\nHost: 10.0.0.1:50051\r\n\r\n", "", http.StatusForbidden},
		{"GET http://catalog.olm.svc:50051/ HTTP/1.1\r\nHost: catalog.olm.svc:50051\r\n\r\n", "", http.StatusMethodNotAllowed},
		{"CONNECT catalog.olm.svc:50051 HTTP/1.1\r\nHost: catalog.olm.svc:50051\r\n\r\n", "10.244.0.7:50051", http.StatusForbidden},
		{"CONNECT gone.olm.svc:50051 HTTP/1.1\r\nHost: gone.olm.svc:50051\r\n\r\n", "", http.StatusBadGateway},
	} {
		p := startProxy(t, func(_ context.Context, ns, name string, _ int) (string, error) {
			if name != "catalog" {
				return "", fmt.Errorf("no service %s/%s", ns, name)
			}
			return tc.endpoint, nil
		})
		if _, status := connect(t, p, tc.request); status != tc.status {
			t.Errorf("%q: status %d, want %d", tc.request, status, tc.status)
		}
		if len(p.Served()) != 0 || len(p.Refused()) != 1 {
			t.Errorf("%q: served %v, refused %v", tc.request, p.Served(), p.Refused())
		}
		if forbidden := len(p.Forbidden()) == 1; forbidden != (tc.status != http.StatusBadGateway) {
			t.Errorf("%q: forbidden %v", tc.request, p.Forbidden())
		}
	}
}

func TestTargetPort(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 50052}},
	}}}}
	for _, tc := range []struct {
		target intstr.IntOrString
		want   int
		ok     bool
	}{
		{intstr.FromInt(50051), 50051, true},
		{intstr.IntOrString{}, 80, true}, // unset: the Service's port
		{intstr.FromString("grpc"), 50052, true},
		{intstr.FromString("http"), 0, false},
	} {
		got, ok := targetPort(corev1.ServicePort{Port: 80, TargetPort: tc.target}, pod)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v: %d %v, want %d %v", tc.target, got, ok, tc.want, tc.ok)
		}
	}
}

// startProxy starts a proxy whose dialer reaches only loopback addresses: a test of the
// refusals must not dial anything else, even when the proxy is broken.
func startProxy(t *testing.T, lookup Lookup) *Proxy {
	t.Helper()
	p, err := start(lookup, func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); !net.ParseIP(host).IsLoopback() {
			t.Errorf("the proxy dialed %s", addr)
			return nil, fmt.Errorf("not dialing %s", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// connect sends request to the proxy and returns the connection and the status.
func connect(t *testing.T, p *Proxy, request string) (net.Conn, int) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Logf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return c, resp.StatusCode
}

func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return l.Addr().String()
}

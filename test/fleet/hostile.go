package fleet

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/btcd"
)

// Hostile tenants' pods, for the fault suite and the bench: what the operator must
// survive without harm to other networks.

// Listener is a hostile pod's RPC port.
type Listener struct{ ln net.Listener }

// Stop closes the port.
func (l *Listener) Stop() { _ = l.ln.Close() }

func listenRPC(pod Pod) (net.Listener, error) {
	return net.Listen("tcp", netip.AddrPortFrom(pod.IP, btcd.RPCPort).String())
}

// HugeAnswers answers every call with size bytes of valid JSON: a result of peers
// without end, written as the operator reads.
func HugeAnswers(size int) Factory[*Listener] {
	peer := []byte(`{"id":1,"addr":"127.0.0.1:18444","inbound":false,"subver":"/` + strings.Repeat("x", 200) + `/"},`)
	const tail = `{}],"error":null,"id":1}`
	answer := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		written, _ := w.Write([]byte(`{"result":[`))
		for written+len(peer) < size-len(tail) {
			n, err := w.Write(peer)
			if err != nil {
				return
			}
			written += n
		}
		_, _ = w.Write([]byte(tail + strings.Repeat(" ", size-written-len(tail))))
	})
	return func(_ context.Context, pod Pod, _ Credentials) (*Listener, error) {
		ln, err := listenRPC(pod)
		if err != nil {
			return nil, err
		}
		go func() { _ = (&http.Server{Handler: answer, ReadHeaderTimeout: 5 * time.Second}).Serve(ln) }()
		return &Listener{ln}, nil
	}
}

// ResetConnections accepts every connection on the pod's RPC port and resets it.
func ResetConnections(_ context.Context, pod Pod, _ Credentials) (*Listener, error) {
	ln, err := listenRPC(pod)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0) // Close sends RST
			_ = c.Close()
		}
	}()
	return &Listener{ln}, nil
}

// SlowDoubles runs Bitcoin Core doubles that take latency to answer each call.
func SlowDoubles(nw *bitcointest.Network, latency time.Duration) Factory[*bitcointest.Node] {
	doubles := Doubles(nw)
	return func(ctx context.Context, pod Pod, creds Credentials) (*bitcointest.Node, error) {
		d, err := doubles(ctx, pod, creds)
		if err == nil {
			d.SetLatency(latency)
		}
		return d, err
	}
}

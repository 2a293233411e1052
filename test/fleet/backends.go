package fleet

import (
	"context"
	"net/netip"
	"path/filepath"

	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/btcd"
)

// Btcd starts a btcd per pod (test/btcd), with its RPC behind the translating proxy.
// Its chain lives in dir/<namespace>/<pod>, so that a pod that comes back under the
// same name finds it, as a StatefulSet pod finds its volume. binary may be empty:
// btcd.Binary() provides it then.
func Btcd(binary, dir string) Factory[*btcd.Node] {
	return func(_ context.Context, pod Pod, creds Credentials) (*btcd.Node, error) {
		return btcd.Start(btcd.Options{
			Binary: binary, IP: pod.IP, Dir: filepath.Join(dir, pod.Namespace, pod.Name),
			User: creds.Username, Password: creds.Password,
		})
	}
}

// Doubles starts a Bitcoin Core RPC double per pod, all in one simulated network.
func Doubles(nw *bitcointest.Network) Factory[*bitcointest.Node] {
	return func(_ context.Context, pod Pod, creds Credentials) (*bitcointest.Node, error) {
		return nw.Start(netip.AddrPortFrom(pod.IP, btcd.RPCPort).String(), netip.AddrPortFrom(pod.IP, btcd.P2PPort).String(),
			creds.Username, creds.Password)
	}
}

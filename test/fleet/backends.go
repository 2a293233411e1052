package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"

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
//
// A stopped double keeps its P2P address in the Network, and kwok hands a freed pod
// IP out again: a pod on the IP of a gone one restarts that double, as a restarted
// bitcoind (empty added-node list, chain kept). The double's credentials cannot
// change, so a pod with other credentials on a reused IP gets no double.
func Doubles(nw *bitcointest.Network) Factory[*bitcointest.Node] {
	var mu sync.Mutex
	started := map[netip.Addr]doubleOf{}
	return func(_ context.Context, pod Pod, creds Credentials) (*bitcointest.Node, error) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := started[pod.IP]; ok {
			if prev.creds != creds {
				return nil, fmt.Errorf("a stopped double with other credentials holds %s: bitcointest cannot release it", pod.IP)
			}
			return prev.node, prev.node.Restart()
		}
		n, err := nw.Start(netip.AddrPortFrom(pod.IP, btcd.RPCPort).String(), netip.AddrPortFrom(pod.IP, btcd.P2PPort).String(),
			creds.Username, creds.Password)
		if err != nil {
			return nil, err
		}
		started[pod.IP] = doubleOf{n, creds}
		return n, nil
	}
}

type doubleOf struct {
	node  *bitcointest.Node
	creds Credentials
}

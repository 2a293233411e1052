// Command registry serves an in-memory image registry over TLS on 127.0.0.1 until
// interrupted, for `make images` without a registry of your own:
//
//	go run ./hack/registry -dir /tmp/reg &   # prints the host and the trust file
//	SSL_CERT_FILE=/tmp/reg/registry-ca.crt make images REGISTRY=<host>/bitcoinops
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bitcoinops/bitcoin-operator/test/registry"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "Where the trust file (system CAs and the registry's certificate) goes.")
	flag.Parse()
	r, err := registry.Start(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
	fmt.Printf("REGISTRY=%s\nSSL_CERT_FILE=%s\n", r.Host, r.TrustFile)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	r.Stop()
}

// Package registry runs an in-memory OCI registry (go-containerregistry's) over TLS on
// a loopback port, with a self-signed certificate made for 127.0.0.1. TLS because
// operator-sdk's `run bundle` reads the index image's labels over HTTPS even with
// --use-http; loopback because nothing here may dial anything else.
package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a running registry.
type Registry struct {
	// Host is its host:port, the first part of its image references.
	Host string
	// TrustFile holds the system's CA certificates and the registry's own: point
	// SSL_CERT_FILE at it and a Go program trusts the registry as well as what it
	// trusted before.
	TrustFile string
	pool      *x509.CertPool
	server    *http.Server
}

// systemRoots is where Debian keeps the CA bundle that SSL_CERT_FILE would replace.
const systemRoots = "/etc/ssl/certs/ca-certificates.crt"

// Start serves a registry on 127.0.0.1 until Stop, writing its trust file into dir.
func Start(dir string) (*Registry, error) {
	certPEM, cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	r := &Registry{TrustFile: filepath.Join(dir, "registry-ca.crt"), pool: x509.NewCertPool()}
	r.pool.AppendCertsFromPEM(certPEM)
	roots, err := os.ReadFile(systemRoots)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.WriteFile(r.TrustFile, append(roots, certPEM...), 0o644); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.Host = l.Addr().String()
	r.server = &http.Server{
		Handler:           ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { _ = r.server.ServeTLS(l, "", "") }()
	return r, nil
}

// Stop closes the registry; its images are gone.
func (r *Registry) Stop() { _ = r.server.Shutdown(context.Background()) }

// Transport is an HTTP transport that trusts the registry, for go-containerregistry's
// remote.WithTransport. It has no proxy: the registry is on loopback.
func (r *Registry) Transport() http.RoundTripper {
	return &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: r.pool, MinVersion: tls.VersionTLS12}}
}

// selfSigned makes a certificate for IP 127.0.0.1, valid for a day: long enough for
// any test run, short enough to be worthless if it leaked.
func selfSigned() ([]byte, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "bitcoin-operator test registry"},
		NotBefore:    time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return certPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// waitHTTP polls url until it answers 200 OK. Only the control plane's own loopback
// addresses are dialed, with TLS unverified (the serving certificate is what we wait for).
func waitHTTP(ctx context.Context, url string, token *string, what string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback, our own server
	}}
	return Poll(ctx, 60*time.Second, what, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if token != nil {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Poll calls done every 100 ms until it returns true, fails, or timeout passes; the
// error names what was awaited.
func Poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeServiceAccountKey writes the key the API server signs ServiceAccount tokens
// with, and verifies them by.
func writeServiceAccountKey(dir string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "sa.key")
	data := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return path, os.WriteFile(path, data, 0o600)
}

// auditPolicy records the write requests of the given users, and nothing else.
func auditPolicy(users []string) []byte {
	policy := map[string]any{
		"apiVersion":        "audit.k8s.io/v1",
		"kind":              "Policy",
		"omitStages":        []string{"RequestReceived"},
		"omitManagedFields": true,
		"rules": []map[string]any{
			{"level": "Metadata", "users": users, "verbs": []string{"create", "update", "patch", "delete", "deletecollection"}},
			{"level": "None"},
		},
	}
	if len(users) == 0 {
		policy["rules"] = []map[string]any{{"level": "None"}}
	}
	data, _ := yaml.Marshal(policy)
	return data
}

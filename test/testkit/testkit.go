// Package testkit holds what the project's test suites share: a TestMain whose setup
// can fail, creating networks, naming steps, and reading the end of a log.
package testkit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// Main runs a suite from TestMain: run starts what the suite needs, calls m.Run and
// stops it all again. An error from run fails the suite with its message. Main never
// returns.
func Main(name string, run func() (code int, err error)) {
	code, err := run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// Network returns a network of the given size, as a user's minimal manifest gives it.
func Network(namespace, name string, nodes int32) *bitcoinv1alpha1.BitcoinNetwork {
	return &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: nodes},
	}
}

// CreateNetwork creates a network of the given size through c.
func CreateNetwork(t testing.TB, c client.Client, namespace, name string, nodes int32) *bitcoinv1alpha1.BitcoinNetwork {
	t.Helper()
	n := Network(namespace, name, nodes)
	NewWithT(t).Expect(c.Create(context.Background(), n)).To(Succeed())
	return n
}

// CreateNamespace creates a namespace named from prefix that enforces the restricted
// Pod Security Standard, as the operator's pods must pass it.
func CreateNamespace(t testing.TB, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix + "-",
		Labels:       map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	NewWithT(t).Expect(c.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

// By labels a step of a test in its log.
func By(t testing.TB, step string) {
	t.Helper()
	t.Log("STEP: " + step)
}

// Tail returns the last n lines of a file, or why it cannot be read.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

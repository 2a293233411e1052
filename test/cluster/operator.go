package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// The operator's identity, as config/default and config/local name it.
const (
	OperatorNamespace      = "bitcoin-operator-system"
	OperatorServiceAccount = "bitcoin-operator-controller-manager"
)

// OperatorUser is the user name the API server sees for the operator's ServiceAccount.
var OperatorUser = "system:serviceaccount:" + OperatorNamespace + ":" + OperatorServiceAccount

// InstallOperator applies the CRD and the RBAC of config/local (config/default without
// the Deployment) and returns a kubeconfig that authenticates as the operator's
// ServiceAccount with a token from the TokenRequest API, so that RBAC is real.
func (c *Cluster) InstallOperator(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if out, err := c.Kubectl(ctx, "apply", "--server-side", "-k", filepath.Join(root, "config", "local")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("kubectl apply -k config/local: %w: %s", err, out)
	}
	if out, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "crd/bitcoinnetworks.bitcoin.bitcoinops.io").CombinedOutput(); err != nil {
		return "", fmt.Errorf("waiting for the CRD: %w: %s", err, out)
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(OperatorNamespace).CreateToken(ctx, OperatorServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to get a token for the operator's ServiceAccount: %w", err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = tr.Status.Token
	path := filepath.Join(c.Dir, "operator.kubeconfig")
	return path, WriteKubeconfig(path, cfg, "bitcoin-operator")
}

// BuildOperator builds the operator binary into the cluster's directory.
func (c *Cluster) BuildOperator(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(c.Dir, "manager")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd: %w: %s", err, out)
	}
	return bin, nil
}

// StartOperator runs the operator binary as a separate process with a kubeconfig,
// free ports for its metrics and health endpoints, and extra arguments. Its log is
// <dir>/<name>.log.
func (c *Cluster) StartOperator(name, binary, kubeconfig string, args ...string) (*Process, error) {
	args = append([]string{
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", freePort()),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", freePort()),
		"--kubeconfig=" + kubeconfig,
	}, args...)
	return c.StartProcess(name, binary, args, "KUBECONFIG="+kubeconfig)
}

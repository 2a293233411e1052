package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
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
	if err := waitForGarbageCollector(ctx, c.Config, cs); err != nil {
		return "", err
	}
	token, err := Token(ctx, cs, OperatorNamespace, OperatorServiceAccount)
	if err != nil {
		return "", err
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	path := filepath.Join(c.Dir, "operator.kubeconfig")
	return path, WriteKubeconfig(path, cfg, "bitcoin-operator")
}

// Token returns a token of a ServiceAccount from the TokenRequest API, valid for a day.
func Token(ctx context.Context, cs kubernetes.Interface, namespace, name string) (string, error) {
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to get a token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
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
// free ports for its metrics and health endpoints, and extra arguments, and tells it
// the memory limit of config/manager's container, as the Deployment does. Its log is
// <dir>/<name>.log.
func (c *Cluster) StartOperator(name, binary, kubeconfig string, args ...string) (*Process, error) {
	limit, err := OperatorMemoryLimit()
	if err != nil {
		return nil, err
	}
	args = append([]string{
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", FreePort()),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", FreePort()),
		"--kubeconfig=" + kubeconfig,
	}, args...)
	return c.StartProcess(name, binary, args, "KUBECONFIG="+kubeconfig, fmt.Sprintf("MEMORY_LIMIT=%d", limit))
}

// OperatorMemoryLimit is the memory limit, in bytes, of the operator's container in
// config/manager/manager.yaml.
func OperatorMemoryLimit() (int64, error) {
	root, err := RepoRoot()
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "manager", "manager.yaml"))
	if err != nil {
		return 0, err
	}
	var deployment appsv1.Deployment
	docs := strings.Split(string(data), "\n---\n")
	if err := yaml.Unmarshal([]byte(docs[len(docs)-1]), &deployment); err != nil {
		return 0, fmt.Errorf("config/manager/manager.yaml: %w", err)
	}
	for _, container := range deployment.Spec.Template.Spec.Containers {
		if limit, ok := container.Resources.Limits[corev1.ResourceMemory]; ok {
			return limit.Value(), nil
		}
	}
	return 0, fmt.Errorf("config/manager/manager.yaml: the operator's container has no memory limit")
}

// waitForGarbageCollector waits until the garbage collector collects the dependents of
// a BitcoinNetwork. It learns of new resource types by rediscovering them every 30 s,
// so until then a deleted network's children would stay: tests and the bench would
// measure the collector's discovery instead of the deletion.
func waitForGarbageCollector(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	networks := dyn.Resource(schema.GroupVersionResource{Group: "bitcoin.bitcoinops.io", Version: "v1alpha1", Resource: "bitcoinnetworks"}).Namespace("default")
	owner, err := networks.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bitcoin.bitcoinops.io/v1alpha1", "kind": "BitcoinNetwork",
		"metadata": map[string]any{"name": "gc-probe"}, "spec": map[string]any{"nodes": int64(0)},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to create the garbage collector probe: %w", err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gc-probe", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "bitcoin.bitcoinops.io/v1alpha1", Kind: "BitcoinNetwork", Name: "gc-probe", UID: owner.GetUID()}}}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, dependent, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := networks.Delete(ctx, "gc-probe", metav1.DeleteOptions{}); err != nil {
		return err
	}
	return Poll(ctx, 2*time.Minute, "the garbage collector to know BitcoinNetworks", func() (bool, error) {
		_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "gc-probe", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

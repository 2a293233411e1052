//go:build olm

package olm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/test/cluster"
	"github.com/bitcoinops/bitcoin-operator/test/testkit"
)

// operator is the operator binary running as the pod of OLM's Deployment would.
type operator struct {
	*cluster.Process
	health  string // the readiness endpoint's URL
	metrics string // the metrics endpoint's URL, as the container's args serve it
}

// inClusterScript runs the operator as in a pod: in a mount namespace of its own, a
// tmpfs over /var/run holds the ServiceAccount's token, CA and namespace where a pod
// has them. So the operator takes its in-cluster configuration, and operator-lib finds
// the OperatorCondition's namespace, exactly as in a cluster, and nothing of the
// machine outside that namespace changes. A user namespace in which the caller is root
// allows the mount without root. $1 is the directory of the three files.
const inClusterScript = `set -e
sa=$1; shift
run=$(readlink -f /var/run)
mount -t tmpfs -o size=1m,mode=0755 bitcoin-operator-sa "$run"
mkdir -p "$run/secrets/kubernetes.io/serviceaccount"
cp "$sa/token" "$sa/ca.crt" "$sa/namespace" "$run/secrets/kubernetes.io/serviceaccount/"
exec "$@"`

// startAsDeployment waits until OLM's Deployment for csv has its pod, then runs the
// operator binary with that pod's container's args and env (downward-API fields
// resolved from the pod, as the kubelet would), authenticated by a token of the pod's
// ServiceAccount. Only the bind addresses change: a pod has its own network namespace,
// the processes here share the machine's.
func startAsDeployment(t *testing.T, namespace, csv string) *operator {
	t.Helper()
	return startBinaryAsDeployment(t, namespace, csv, manager)
}

// startBinaryAsDeployment is startAsDeployment with a given operator binary, such as
// the one extracted from the pushed operator image.
func startBinaryAsDeployment(t *testing.T, namespace, csv, binary string) *operator {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	pod := deploymentPod(t, namespace, csv)
	container := pod.Spec.Containers[0]

	env, err := resolveEnv(container.Env, pod)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env).To(ContainElement(controller.OperatorConditionEnvVar+"="+csv), "OLM injects the OperatorCondition's name")
	health, metrics := cluster.FreePort(), cluster.FreePort()
	var args []string
	for _, a := range container.Args {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address="):
			a = fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics)
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", health)
		}
		args = append(args, a)
	}

	cs, err := kubernetes.NewForConfig(lc.Config)
	g.Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, pod.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}},
		metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	sa := filepath.Join(lc.Dir, "sa-"+csv)
	g.Expect(os.MkdirAll(sa, 0o700)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(sa, "token"), []byte(tr.Status.Token), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(sa, "ca.crt"), lc.Config.CAData, 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(sa, "namespace"), []byte(namespace), 0o644)).To(Succeed())

	server, err := url.Parse(lc.Config.Host)
	g.Expect(err).NotTo(HaveOccurred())
	env = append(env, "KUBERNETES_SERVICE_HOST="+server.Hostname(), "KUBERNETES_SERVICE_PORT="+server.Port(),
		"KUBECONFIG=") // the in-cluster configuration, not the test's
	p, err := lc.StartProcess("operator-"+csv, "unshare",
		append([]string{"--map-root-user", "--mount", "--propagation", "private", "sh", "-c", inClusterScript, "sh", sa, binary}, args...), env...)
	g.Expect(err).NotTo(HaveOccurred())
	op := &operator{Process: p, health: fmt.Sprintf("http://127.0.0.1:%d/readyz", health),
		metrics: fmt.Sprintf("https://127.0.0.1:%d/metrics", metrics)}
	t.Cleanup(op.stop)
	g.Eventually(func(g Gomega) {
		exited, err := op.Exited()
		g.Expect(exited).To(BeFalse(), "the operator exited (%v): %s", err, testkit.Tail(op.LogPath, 20))
		resp, err := http.Get(op.health)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}, convergeTimeout, interval).Should(Succeed())
	return op
}

func (o *operator) stop() { _ = o.Stop(15 * time.Second) }

// expectNothingForbidden fails if the API server refused the operator anything.
func (o *operator) expectNothingForbidden(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(o.LogPath)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("the operator was refused: %s", line)
		}
	}
}

// deploymentPod waits until OLM's Deployment runs csv's template (OLM injects
// OPERATOR_CONDITION_NAME into it) and returns the Deployment's pod of that template.
func deploymentPod(t *testing.T, namespace, csv string) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	var pod *corev1.Pod
	g.Eventually(func(g Gomega) {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: deploymentName}, dep)).To(Succeed())
		g.Expect(dep.Status.ObservedGeneration).To(Equal(dep.Generation))
		g.Expect(dep.Status.UpdatedReplicas).To(BeEquivalentTo(1))
		g.Expect(dep.Status.AvailableReplicas).To(BeEquivalentTo(1))
		var pods corev1.PodList
		g.Expect(k8s.List(ctx, &pods, client.InNamespace(namespace),
			client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(dep.Spec.Selector.MatchLabels)})).To(Succeed())
		pod = nil
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && envValue(p.Spec.Containers[0].Env, controller.OperatorConditionEnvVar) == csv {
				pod = p
			}
		}
		g.Expect(pod).NotTo(BeNil(), "a running pod of %s's Deployment", csv)
	}, olmTimeout, interval).Should(Succeed())
	return pod
}

var fieldAnnotation = regexp.MustCompile(`^metadata\.annotations\['(.+)'\]$`)

// resolveEnv turns a container's env into NAME=value pairs, resolving the downward
// API fields and resources the CSV uses from the pod, as the kubelet does.
func resolveEnv(env []corev1.EnvVar, pod *corev1.Pod) ([]string, error) {
	var out []string
	for _, e := range env {
		value, err := envVarValue(e, pod)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		out = append(out, e.Name+"="+value)
	}
	return out, nil
}

func envVarValue(e corev1.EnvVar, pod *corev1.Pod) (string, error) {
	switch from := e.ValueFrom; {
	case from == nil:
		return e.Value, nil
	case from.ResourceFieldRef != nil:
		return resourceValue(from.ResourceFieldRef, pod)
	case from.FieldRef != nil:
		return fieldValue(from.FieldRef.FieldPath, pod)
	}
	return "", fmt.Errorf("only fieldRef and resourceFieldRef are supported here")
}

func fieldValue(path string, pod *corev1.Pod) (string, error) {
	switch m := fieldAnnotation.FindStringSubmatch(path); {
	case m != nil:
		return pod.Annotations[m[1]], nil
	case path == "metadata.namespace":
		return pod.Namespace, nil
	case path == "metadata.name":
		return pod.Name, nil
	case path == "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	}
	return "", fmt.Errorf("field %s is not supported here", path)
}

// resourceValue is a container's limit or request in units of the divisor (1 if
// unset), rounded up, as the kubelet gives it.
func resourceValue(ref *corev1.ResourceFieldSelector, pod *corev1.Pod) (string, error) {
	for _, c := range pod.Spec.Containers {
		if c.Name != ref.ContainerName {
			continue
		}
		kind, name, _ := strings.Cut(ref.Resource, ".")
		list := map[string]corev1.ResourceList{"limits": c.Resources.Limits, "requests": c.Resources.Requests}[kind]
		q, ok := list[corev1.ResourceName(name)]
		if !ok {
			return "", fmt.Errorf("container %s has no %s", c.Name, ref.Resource)
		}
		divisor := ref.Divisor.MilliValue()
		if divisor == 0 {
			divisor = 1000
		}
		return strconv.FormatInt((q.MilliValue()+divisor-1)/divisor, 10), nil
	}
	return "", fmt.Errorf("no container %q", ref.ContainerName)
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

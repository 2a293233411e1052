package controller

import (
	"strings"

	operatorsv2 "github.com/operator-framework/api/pkg/operators/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// secretMetadata is the metadata-only form in which the cache holds Secrets.
var secretMetadata = &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}

// NewScheme returns a scheme with the Kubernetes types, the BitcoinNetwork API and
// OLM's OperatorCondition.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(bitcoinv1alpha1.AddToScheme(s))
	utilruntime.Must(operatorsv2.AddToScheme(s)) // the OperatorCondition, under OLM
	return s
}

// CacheOptions limits the manager's cache to what the operator reads: the namespaces
// of WATCH_NAMESPACE (empty: all; otherwise a comma-separated list, as OLM sets it),
// and of the pods, StatefulSets, Services and NetworkPolicies only those the operator
// rendered, so that a cluster's other pods cost it no memory. Pods keep only what the
// reconcilers read (slimPod); the rendered objects keep their managedFields for no-op
// detection. Secrets are watched as metadata only, without managedFields.
func CacheOptions(watchNamespace string) cache.Options {
	ours := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                 {Label: ours, Transform: slimPod},
			&appsv1.StatefulSet{}:         {Label: ours},
			&corev1.Service{}:             {Label: ours},
			&networkingv1.NetworkPolicy{}: {Label: ours},
			secretMetadata:                {Transform: cache.TransformStripManagedFields()},
		},
	}
	for _, ns := range strings.Split(watchNamespace, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			if opts.DefaultNamespaces == nil {
				opts.DefaultNamespaces = map[string]cache.Config{}
			}
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// slimPod drops from a cached pod what the operator never reads: managedFields, the
// spec but its Node's name, and all of the status but the IP, the conditions, and
// each container's restart count and waiting reason.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName}
	var containers []corev1.ContainerStatus
	for _, c := range pod.Status.ContainerStatuses {
		slim := corev1.ContainerStatus{Name: c.Name, RestartCount: c.RestartCount}
		if w := c.State.Waiting; w != nil {
			slim.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason}
		}
		containers = append(containers, slim)
	}
	pod.Status = corev1.PodStatus{PodIP: pod.Status.PodIP, Conditions: pod.Status.Conditions, ContainerStatuses: containers}
	return pod, nil
}

// Package fleet gives the pods of a BitcoinNetwork on the local control plane
// (test/cluster) something to talk to. kwok's pods run no container; a Fleet watches a
// network's pods and runs one backend per pod on the pod's own IP, a btcd (test/btcd)
// or a Bitcoin Core RPC double (internal/bitcoin/bitcointest), so that the operator
// dials <pod IP>:18443 and wires peers as <pod IP>:18444 exactly as in a cluster.
//
// The Fleet plays the kubelet's part for the backend: it starts one when a pod has an
// IP, and stops it when the pod is deleted or replaced, or its IP changes.
package fleet

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// Backend is what runs for one pod.
type Backend interface {
	// Stop ends the backend and frees the pod IP's ports.
	Stop()
}

// Pod is what a backend needs of its pod.
type Pod struct {
	Namespace, Name string
	UID             types.UID
	IP              netip.Addr
}

// Credentials are a node's RPC credentials.
type Credentials struct {
	Username, Password string
}

// Factory starts a backend for a pod.
type Factory[B Backend] func(ctx context.Context, pod Pod, creds Credentials) (B, error)

// CredentialsFunc returns the RPC credentials of a pod's node.
type CredentialsFunc func(ctx context.Context, pod *corev1.Pod) (Credentials, error)

// Options configure a Fleet.
type Options[B Backend] struct {
	// Config reaches the API server; the Fleet reads pods and, through
	// NetworkSecret, BitcoinNetworks and Secrets.
	Config *rest.Config
	// Namespace and Network name the BitcoinNetwork whose pods get backends.
	Namespace, Network string
	// Start starts a backend for a pod.
	Start Factory[B]
	// Credentials returns the credentials a backend is started with. Default:
	// NetworkSecret, the Secret that status.secretName of the network names.
	Credentials CredentialsFunc
	// Log receives a line per backend started or stopped, and per failure; nil
	// discards them.
	Log io.Writer
}

// Fleet runs a backend per pod of one network.
type Fleet[B Backend] struct {
	opts   Options[B]
	cancel context.CancelFunc
	done   chan struct{}
	poke   chan struct{}

	mu       sync.Mutex
	backends map[string]running[B]
	// warned holds the last problem logged per pod.
	warned map[string]string
}

type running[B Backend] struct {
	uid     types.UID
	ip      netip.Addr
	backend B
}

// retryInterval is how soon a backend that failed to start, or whose credentials
// were not there yet, is tried again.
const retryInterval = time.Second

// Start watches the network's pods and returns once the watch has synced; backends
// start in the background from then on.
func Start[B Backend](ctx context.Context, opts Options[B]) (*Fleet[B], error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Credentials == nil {
		c, err := client.New(opts.Config, client.Options{})
		if err != nil {
			return nil, err
		}
		opts.Credentials = NetworkSecret(c)
	}
	cs, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	selector := labels.SelectorFromSet(labels.Set{
		render.LabelManagedBy: "bitcoin-operator",
		render.LabelInstance:  opts.Network,
	}).String()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	pods := factory.Core().V1().Pods()
	f := &Fleet[B]{opts: opts, done: make(chan struct{}), poke: make(chan struct{}, 1), backends: map[string]running[B]{}, warned: map[string]string{}}
	poke := func(any) {
		select {
		case f.poke <- struct{}{}:
		default:
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, DeleteFunc: poke, UpdateFunc: func(_, obj any) { poke(obj) },
	}); err != nil {
		return nil, err
	}
	ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced) {
		f.cancel()
		return nil, fmt.Errorf("fleet: the watch of %s/%s's pods did not sync", opts.Namespace, opts.Network)
	}
	go f.run(ctx, pods.Lister().Pods(opts.Namespace))
	return f, nil
}

// run syncs on every pod event, and every retryInterval for what failed.
func (f *Fleet[B]) run(ctx context.Context, pods corelisters.PodNamespaceLister) {
	defer close(f.done)
	ticker := time.NewTicker(retryInterval)
	defer ticker.Stop()
	for {
		list, err := pods.List(labels.Everything())
		if err == nil {
			f.sync(ctx, list)
		}
		select {
		case <-ctx.Done():
			return
		case <-f.poke:
		case <-ticker.C:
		}
	}
}

// sync stops the backends whose pod is gone, terminating, replaced or moved, and
// starts those that are missing.
func (f *Fleet[B]) sync(ctx context.Context, pods []*corev1.Pod) {
	want := map[string]*corev1.Pod{}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		want[pod.Name] = pod
	}
	f.mu.Lock()
	current := maps.Clone(f.backends)
	f.mu.Unlock()
	for name, r := range current {
		pod := want[name]
		if pod != nil && pod.UID == r.uid && pod.Status.PodIP == r.ip.String() {
			continue
		}
		r.backend.Stop()
		f.mu.Lock()
		delete(f.backends, name)
		f.mu.Unlock()
		fmt.Fprintf(f.opts.Log, "fleet: stopped the node of pod %s on %s\n", name, r.ip)
	}
	for name, pod := range want {
		f.mu.Lock()
		_, ok := f.backends[name]
		f.mu.Unlock()
		if ok {
			continue
		}
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || !ip.Is4() || !ip.IsLoopback() {
			// Nothing may listen on or dial an address off this machine.
			f.warn(name, fmt.Sprintf("pod %s has IP %q, not in 127.0.0.0/8: no node for it", name, pod.Status.PodIP))
			continue
		}
		creds, err := f.opts.Credentials(ctx, pod)
		if err != nil {
			// The operator may not have written its Secret yet.
			f.warn(name, fmt.Sprintf("no credentials for pod %s yet: %v", name, err))
			continue
		}
		b, err := f.opts.Start(ctx, Pod{Namespace: pod.Namespace, Name: name, UID: pod.UID, IP: ip}, creds)
		if err != nil {
			f.warn(name, fmt.Sprintf("failed to start the node of pod %s on %s: %v", name, ip, err))
			continue
		}
		f.mu.Lock()
		f.backends[name] = running[B]{uid: pod.UID, ip: ip, backend: b}
		delete(f.warned, name)
		f.mu.Unlock()
		fmt.Fprintf(f.opts.Log, "fleet: started a node for pod %s on %s\n", name, ip)
	}
}

// warn logs a pod's problem once, not at every retry.
func (f *Fleet[B]) warn(pod, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.warned[pod] == msg {
		return
	}
	f.warned[pod] = msg
	fmt.Fprintf(f.opts.Log, "fleet: %s\n", msg)
}

// Nodes returns the running backends by pod name.
func (f *Fleet[B]) Nodes() map[string]B {
	f.mu.Lock()
	defer f.mu.Unlock()
	nodes := make(map[string]B, len(f.backends))
	for name, r := range f.backends {
		nodes[name] = r.backend
	}
	return nodes
}

// Node returns the backend of a pod, if one runs.
func (f *Fleet[B]) Node(pod string) (B, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.backends[pod]
	return r.backend, ok
}

// Stop ends the watch and every backend.
func (f *Fleet[B]) Stop() {
	f.cancel()
	<-f.done
	f.mu.Lock()
	backends := f.backends
	f.backends = map[string]running[B]{}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range backends {
		wg.Go(r.backend.Stop)
	}
	wg.Wait()
}

// StaticCredentials gives every pod the same credentials.
func StaticCredentials(creds Credentials) CredentialsFunc {
	return func(context.Context, *corev1.Pod) (Credentials, error) { return creds, nil }
}

var networkGVK = schema.GroupVersionKind{Group: "bitcoin.bitcoinops.io", Version: "v1alpha1", Kind: "BitcoinNetwork"}

// NetworkSecret reads a pod's credentials from the Secret that status.secretName of
// its network names, as the operator reads them. The network is read unstructured,
// so that this works with any version of the API types.
func NetworkSecret(c client.Reader) CredentialsFunc {
	return func(ctx context.Context, pod *corev1.Pod) (Credentials, error) {
		network := &unstructured.Unstructured{}
		network.SetGroupVersionKind(networkGVK)
		key := client.ObjectKey{Namespace: pod.Namespace, Name: pod.Labels[render.LabelInstance]}
		if err := c.Get(ctx, key, network); err != nil {
			if meta.IsNoMatchError(err) {
				return Credentials{}, fmt.Errorf("the BitcoinNetwork CRD is not installed: %w", err)
			}
			return Credentials{}, err
		}
		name, _, _ := unstructured.NestedString(network.Object, "status", "secretName")
		if name == "" {
			return Credentials{}, fmt.Errorf("BitcoinNetwork %s has no status.secretName yet", key)
		}
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: name}, secret); err != nil {
			return Credentials{}, err
		}
		creds := Credentials{Username: string(secret.Data[corev1.BasicAuthUsernameKey]), Password: string(secret.Data[corev1.BasicAuthPasswordKey])}
		if creds.Username == "" || creds.Password == "" {
			return Credentials{}, fmt.Errorf("Secret %s/%s has no username or password", pod.Namespace, name)
		}
		return creds, nil
	}
}

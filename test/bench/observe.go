package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// observer times, from the bench's own informers, when things happen in a namespace:
// the networks' children appear, pods turn Ready, status.nodes entries turn ready,
// networks turn Ready, Connected and Synced. Both ends of a status lag are timed here,
// in one clock. Informers, not plain watches: an API server under load may close a
// watch whose reader falls behind, and an informer watches again.
type observer struct {
	size   Size
	cancel context.CancelFunc
	mu     sync.Mutex
	// children holds the names of each kind of child seen: StatefulSets, Services,
	// NetworkPolicies and the networks' Secrets.
	children map[string]map[string]bool
	podReady map[string]time.Time // pod name: first seen Ready
	podNet   map[string]string    // pod name: its network's
	// whole holds when each network was first Ready, Connected and Synced at once.
	whole    map[string]time.Time
	nodeSeen map[string]time.Time // pod name: first seen ready in status.nodes
	// state holds, per network, what it is now.
	state map[string]networkState
	// steadySince is when every network last became Ready, Connected and Synced at
	// once; zero while one is not.
	steadySince time.Time

	// Each is sent once, when every network first is so.
	childrenDone, ready, connected, synced *milestone
}

// networkState is what the bench waits for of a network.
type networkState struct{ ready, connected, synced bool }

// milestone is a moment sent once.
type milestone struct {
	once sync.Once
	at   chan time.Time
}

func newMilestone() *milestone { return &milestone{at: make(chan time.Time, 1)} }

func (m *milestone) reach(t time.Time) { m.once.Do(func() { m.at <- t }) }

// childKinds are the children of a network the operator creates.
var childKinds = []string{"StatefulSet", "Service", "NetworkPolicy", "Secret"}

func observe(ctx context.Context, cfg *rest.Config, namespace string, s Size) (*observer, error) {
	o := &observer{size: s, children: map[string]map[string]bool{}, podReady: map[string]time.Time{},
		nodeSeen: map[string]time.Time{}, state: map[string]networkState{}, podNet: map[string]string{}, whole: map[string]time.Time{},
		childrenDone: newMilestone(), ready: newMilestone(), connected: newMilestone(), synced: newMilestone()}
	for _, k := range childKinds {
		o.children[k] = map[string]bool{}
	}
	ctx, o.cancel = context.WithCancel(ctx)
	informers, err := crcache.New(cfg, crcache.Options{
		Scheme: controller.NewScheme(), DefaultNamespaces: map[string]crcache.Config{namespace: {}},
	})
	if err != nil {
		return nil, err
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.handle(obj) },
		UpdateFunc: func(_, obj any) { o.handle(obj) },
	}
	for _, obj := range []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}, &networkingv1.NetworkPolicy{},
		&corev1.Secret{}, &corev1.Pod{}, &bitcoinv1alpha1.BitcoinNetwork{}} {
		informer, err := informers.GetInformer(ctx, obj)
		if err != nil {
			o.stop()
			return nil, err
		}
		if _, err := informer.AddEventHandler(handler); err != nil {
			o.stop()
			return nil, err
		}
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		o.stop()
		return nil, fmt.Errorf("the bench's informers did not sync")
	}
	return o, nil
}

func (o *observer) stop() { o.cancel() }

func (o *observer) handle(obj any) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	switch obj := obj.(type) {
	case *appsv1.StatefulSet:
		o.children["StatefulSet"][obj.Name] = true
	case *corev1.Service:
		o.children["Service"][obj.Name] = true
	case *networkingv1.NetworkPolicy:
		o.children["NetworkPolicy"][obj.Name] = true
	case *corev1.Secret:
		// The networks' credentials, which the operator generates: the bench's
		// networks name no Secret of their own.
		if owner := metaOwner(obj); owner == "BitcoinNetwork" {
			o.children["Secret"][obj.Name] = true
		}
	case *corev1.Pod:
		if _, seen := o.podReady[obj.Name]; !seen && podReady(obj) {
			o.podReady[obj.Name] = now
		}
		o.podNet[obj.Name] = obj.Labels[render.LabelInstance]
	case *bitcoinv1alpha1.BitcoinNetwork:
		o.handleNetwork(obj, now)
	}
	done := true
	for _, k := range childKinds {
		done = done && len(o.children[k]) == o.size.Networks
	}
	if done {
		o.childrenDone.reach(now)
	}
}

func (o *observer) handleNetwork(n *bitcoinv1alpha1.BitcoinNetwork, now time.Time) {
	ready := meta.IsStatusConditionTrue(n.Status.Conditions, bitcoinv1alpha1.ConditionAvailable) &&
		len(n.Status.Nodes) == o.size.Nodes
	for _, node := range n.Status.Nodes {
		if _, seen := o.nodeSeen[node.NodeName]; !seen && node.Ready {
			o.nodeSeen[node.NodeName] = now
		}
		ready = ready && node.Ready
	}
	state := networkState{
		ready:     ready,
		connected: meta.IsStatusConditionTrue(n.Status.Conditions, bitcoinv1alpha1.ConditionConnected),
		synced:    meta.IsStatusConditionTrue(n.Status.Conditions, bitcoinv1alpha1.ConditionSynced),
	}
	o.state[n.Name] = state
	if _, seen := o.whole[n.Name]; !seen && state.ready && state.connected && state.synced {
		o.whole[n.Name] = now
	}
	// Connected and Synced speak of the ready nodes only: a network of 3 whose first
	// node is ready is already both. What a user waits for is the whole network so.
	var readyCount, connected, synced, steady int
	for _, s := range o.state {
		readyCount += b2i(s.ready)
		connected += b2i(s.ready && s.connected)
		synced += b2i(s.ready && s.synced)
		steady += b2i(s.ready && s.connected && s.synced)
	}
	all := o.size.Networks
	if readyCount == all {
		o.ready.reach(now)
	}
	if connected == all {
		o.connected.reach(now)
	}
	if synced == all {
		o.synced.reach(now)
	}
	switch {
	case steady < all:
		o.steadySince = time.Time{}
	case o.steadySince.IsZero():
		o.steadySince = now
	}
}

// steady returns since when every network has been Ready, Connected and Synced, and
// whether they are now.
func (o *observer) steady() (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.steadySince, !o.steadySince.IsZero()
}

func metaOwner(obj client.Object) string {
	for _, ref := range obj.GetOwnerReferences() {
		return ref.Kind
	}
	return ""
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// wait waits until a milestone is reached.
func (o *observer) wait(m *milestone, timeout time.Duration, what string) (time.Time, error) {
	select {
	case t := <-m.at:
		return t, nil
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("timed out after %s waiting for %s (%s)", timeout, what, o.counts())
	}
}

// counts says how far the size got, for a timeout's error.
func (o *observer) counts() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ready, connected, synced int
	for _, s := range o.state {
		ready += b2i(s.ready)
		connected += b2i(s.connected)
		synced += b2i(s.synced)
	}
	return fmt.Sprintf("StatefulSets %d, Services %d, NetworkPolicies %d, Secrets %d, ready pods %d, ready entries %d, networks ready %d, Connected (any node ready) %d, Synced (any node ready) %d",
		len(o.children["StatefulSet"]), len(o.children["Service"]), len(o.children["NetworkPolicy"]), len(o.children["Secret"]),
		len(o.podReady), len(o.nodeSeen), ready, connected, synced)
}

// afterLastReady returns, over the networks, the time from the last of a network's
// pods turning Ready to the network first being Ready, Connected and Synced at once.
func (o *observer) afterLastReady() LagFigures {
	o.mu.Lock()
	defer o.mu.Unlock()
	last := map[string]time.Time{}
	for pod, ready := range o.podReady {
		if n := o.podNet[pod]; ready.After(last[n]) {
			last[n] = ready
		}
	}
	var after []float64
	for n, whole := range o.whole {
		if ready, ok := last[n]; ok {
			after = append(after, max(0, whole.Sub(ready).Seconds()))
		}
	}
	return lagFigures(after)
}

// lag returns the status lag figures over every pod seen Ready with its entry.
func (o *observer) lag() LagFigures {
	o.mu.Lock()
	defer o.mu.Unlock()
	var lags []float64
	for pod, ready := range o.podReady {
		if seen, ok := o.nodeSeen[pod]; ok {
			lags = append(lags, max(0, seen.Sub(ready).Seconds()))
		}
	}
	return lagFigures(lags)
}

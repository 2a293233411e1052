package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/controller"
)

// observer times, from the bench's own informers, when things happen in a namespace:
// StatefulSets and Services appear, pods turn Ready, status.nodes entries turn ready,
// networks turn Available. Both ends of a status lag are timed here, in one clock.
// Informers, not plain watches: an API server under load may close a watch whose
// reader falls behind, and an informer watches again.
type observer struct {
	size     Size
	cancel   context.CancelFunc
	mu       sync.Mutex
	sts, svc map[string]bool
	podReady map[string]time.Time // pod name: first seen Ready
	nodeSeen map[string]time.Time // pod name: first seen ready in status.nodes
	avail    map[string]bool

	created, converged chan time.Time
	createdOnce        sync.Once
	convergedOnce      sync.Once
}

func observe(ctx context.Context, cfg *rest.Config, namespace string, s Size) (*observer, error) {
	o := &observer{size: s, sts: map[string]bool{}, svc: map[string]bool{}, podReady: map[string]time.Time{},
		nodeSeen: map[string]time.Time{}, avail: map[string]bool{},
		created: make(chan time.Time, 1), converged: make(chan time.Time, 1)}
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
	for _, obj := range []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}, &corev1.Pod{}, &bitcoinv1alpha1.BitcoinNetwork{}} {
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
		o.sts[obj.Name] = true
	case *corev1.Service:
		o.svc[obj.Name] = true
	case *corev1.Pod:
		if _, seen := o.podReady[obj.Name]; !seen && podReady(obj) {
			o.podReady[obj.Name] = now
		}
	case *bitcoinv1alpha1.BitcoinNetwork:
		for _, n := range obj.Status.Nodes {
			if _, seen := o.nodeSeen[n.NodeName]; !seen && n.Ready {
				o.nodeSeen[n.NodeName] = now
			}
		}
		if meta.IsStatusConditionTrue(obj.Status.Conditions, bitcoinv1alpha1.ConditionAvailable) &&
			len(obj.Status.Nodes) == o.size.Nodes {
			o.avail[obj.Name] = true
		}
	}
	if len(o.sts) == o.size.Networks && len(o.svc) == o.size.Networks {
		o.createdOnce.Do(func() { o.created <- now })
	}
	if len(o.avail) == o.size.Networks {
		o.convergedOnce.Do(func() { o.converged <- now })
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (o *observer) wait(ch chan time.Time, timeout time.Duration, what string) (time.Time, error) {
	select {
	case t := <-ch:
		return t, nil
	case <-time.After(timeout):
		o.mu.Lock()
		defer o.mu.Unlock()
		return time.Time{}, fmt.Errorf("timed out after %s waiting for %s (StatefulSets %d, Services %d, ready pods %d, ready entries %d, available %d)",
			timeout, what, len(o.sts), len(o.svc), len(o.podReady), len(o.nodeSeen), len(o.avail))
	}
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

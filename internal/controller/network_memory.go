package controller

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
)

// networkMemory is what a reconciler keeps about each network between reconciles.
// Entries are found by the network's namespace and name, which is all a request for a
// deleted network carries, and are bound to the network's UID: a network deleted and
// created again under the same name never sees its predecessor's entry.
//
// A reconciler forgets a network when its reconcile finds the network gone or being
// deleted (see liveNetwork), so no entry outlives its network.
type networkMemory[T any] struct {
	mu      sync.Mutex
	entries map[types.NamespacedName]remembered[T]
}

type remembered[T any] struct {
	uid   types.UID
	value T
}

func networkKey(network *bitcoinv1alpha1.BitcoinNetwork) types.NamespacedName {
	return types.NamespacedName{Namespace: network.Namespace, Name: network.Name}
}

// load returns what is remembered about this network, if anything.
func (m *networkMemory[T]) load(network *bitcoinv1alpha1.BitcoinNetwork) (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[networkKey(network)]
	if !ok || e.uid != network.UID {
		var zero T
		return zero, false
	}
	return e.value, true
}

// store remembers value for the network, replacing what was remembered before.
func (m *networkMemory[T]) store(network *bitcoinv1alpha1.BitcoinNetwork, value T) {
	m.update(network, func(T, bool) T { return value })
}

// update replaces what is remembered for the network with change's result, under the
// lock, so that a read-modify-write cannot interleave with another.
func (m *networkMemory[T]) update(network *bitcoinv1alpha1.BitcoinNetwork, change func(old T, ok bool) T) T {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[types.NamespacedName]remembered[T]{}
	}
	key := networkKey(network)
	old, ok := m.entries[key]
	if ok && old.uid != network.UID {
		var zero T
		old, ok = remembered[T]{value: zero}, false
	}
	value := change(old.value, ok)
	m.entries[key] = remembered[T]{uid: network.UID, value: value}
	return value
}

// forget drops the network's entry, whatever its UID, and returns it so that the
// caller can release what it holds.
func (m *networkMemory[T]) forget(key types.NamespacedName) (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	delete(m.entries, key)
	return e.value, ok
}

// liveNetwork reads the network a request names. It returns nil, and no error, when the
// network is gone or being deleted: the garbage collector then removes its children,
// applying them would recreate what it just deleted, and the reconciler forgets it.
func liveNetwork(ctx context.Context, c client.Reader, key types.NamespacedName) (*bitcoinv1alpha1.BitcoinNetwork, error) {
	network := &bitcoinv1alpha1.BitcoinNetwork{}
	if err := c.Get(ctx, key, network); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !network.DeletionTimestamp.IsZero() {
		return nil, nil
	}
	return network, nil
}

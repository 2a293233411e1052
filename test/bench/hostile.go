package main

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin/bitcointest"
	"github.com/bitcoinops/bitcoin-operator/test/fleet"
)

// The hostile tenants' nodes: 5 per network, answering 64 MiB per call (32 times the
// operator's bound), answering just inside the 5 s call timeout, or resetting every
// connection.
const (
	hostileNodes = 5
	hugeAnswer   = 64 << 20
	slowAnswer   = 4500 * time.Millisecond
)

// HostileResult holds the figures of the hostile tenants' run.
type HostileResult struct {
	// NetworksPerKind networks of each hostile kind ran at once.
	NetworksPerKind int `json:"networksPerKind"`
	// HealthyConnectedSeconds is how long a healthy 3-node network created beside them
	// took to turn Connected.
	HealthyConnectedSeconds float64 `json:"healthyConnectedSeconds"`
	// PeakRSSMiB is the operator's peak resident memory over the run.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
}

// hostile runs perKind networks of each hostile kind with a fresh operator, waits
// until they are all Available and have been asked, creates a healthy network beside
// them, and times it to Connected.
func (b *bench) hostile(ctx context.Context, perKind int) (HostileResult, error) {
	res := HostileResult{NetworksPerKind: perKind}
	op, err := b.startOperator(ctx, "operator-hostile")
	if err != nil {
		return res, err
	}
	defer op.Stop(10 * time.Second)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-hostile"}}
	if err := b.k8s.Create(ctx, ns); err != nil {
		return res, err
	}
	defer b.k8s.Delete(ctx, ns) //nolint:errcheck // the control plane goes next

	kinds := map[string]func(n string) error{
		"huge":  func(n string) error { return startFleet(ctx, b, n, fleet.HugeAnswers(hugeAnswer)) },
		"reset": func(n string) error { return startFleet(ctx, b, n, fleet.ResetConnections) },
		"slow": func(n string) error {
			return startFleet(ctx, b, n, fleet.SlowDoubles(&bitcointest.Network{}, slowAnswer))
		},
	}
	var names []string
	for kind, start := range kinds {
		for i := range perKind {
			name := fmt.Sprintf("%s-%d", kind, i)
			if err := b.createNetwork(ctx, name, hostileNodes); err != nil {
				return res, err
			}
			if err := start(name); err != nil {
				return res, err
			}
			names = append(names, name)
		}
	}
	// Every hostile network is up and its first round has ended (Connected says what
	// it found): from now on their rounds are the load.
	for _, name := range names {
		if err := b.waitNetwork(ctx, name, "Available and asked", func(n *bitcoinv1alpha1.BitcoinNetwork) bool {
			return meta.IsStatusConditionTrue(n.Status.Conditions, bitcoinv1alpha1.ConditionAvailable) &&
				meta.FindStatusCondition(n.Status.Conditions, bitcoinv1alpha1.ConditionConnected) != nil
		}); err != nil {
			return res, err
		}
	}

	start := time.Now()
	if err := b.createNetwork(ctx, "healthy", 3); err != nil {
		return res, err
	}
	if err := startFleet(ctx, b, "healthy", fleet.Doubles(&bitcointest.Network{})); err != nil {
		return res, err
	}
	if err := b.waitNetwork(ctx, "healthy", "Connected", func(n *bitcoinv1alpha1.BitcoinNetwork) bool {
		return meta.IsStatusConditionTrue(n.Status.Conditions, bitcoinv1alpha1.ConditionConnected)
	}); err != nil {
		return res, err
	}
	res.HealthyConnectedSeconds = time.Since(start).Seconds()
	res.PeakRSSMiB, _, err = processStats(op.Pid())
	return res, err
}

func (b *bench) createNetwork(ctx context.Context, name string, nodes int32) error {
	return b.k8s.Create(ctx, &bitcoinv1alpha1.BitcoinNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench-hostile"},
		Spec:       bitcoinv1alpha1.BitcoinNetworkSpec{Nodes: nodes},
	})
}

// waitNetwork waits until a network of the hostile run is as ok says.
func (b *bench) waitNetwork(ctx context.Context, name, what string, ok func(*bitcoinv1alpha1.BitcoinNetwork) bool) error {
	const timeout = 5 * time.Minute
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n := &bitcoinv1alpha1.BitcoinNetwork{}
		if err := b.k8s.Get(ctx, client.ObjectKey{Namespace: "bench-hostile", Name: name}, n); err != nil {
			return err
		}
		if ok(n) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("network %s not %s after %s", name, what, timeout)
}

// startFleet runs a backend per pod of a network of the hostile run until ctx ends.
func startFleet[B fleet.Backend](ctx context.Context, b *bench, network string, start fleet.Factory[B]) error {
	f, err := fleet.Start(ctx, fleet.Options[B]{
		Config: b.cfg, Namespace: "bench-hostile", Network: network, Start: start, Log: io.Discard,
	})
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); f.Stop() }()
	return nil
}

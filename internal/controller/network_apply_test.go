package controller

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestCreationsAreRememberedForTheCacheLag(t *testing.T) {
	g := NewWithT(t)
	var c creations
	a, b := testNetwork("a", "uid-a"), testNetwork("b", "uid-b")
	now := time.Now()
	c.record(a, "Service", "a", now)

	g.Expect(c.recent(a, "Service", "a", now.Add(cacheLag-time.Millisecond))).To(BeTrue())
	g.Expect(c.recent(a, "Service", "a", now.Add(cacheLag))).To(BeFalse(), "the cache has had its time")
	g.Expect(c.recent(a, "StatefulSet", "a", now)).To(BeFalse())
	g.Expect(c.recent(b, "Service", "a", now)).To(BeFalse())

	c.record(a, "StatefulSet", "a", now.Add(cacheLag))
	children, _ := c.load(a)
	g.Expect(children).To(HaveLen(1), "what is older than the cache lag is dropped")
}

// laggingCache is a client whose reads miss every object, as the operator's cache
// does right after the objects' creation under load. It counts the applies it sends.
type laggingCache struct {
	client.Client
	applies int
}

func (c *laggingCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(corev1.Resource("services"), key.Name)
}

func (c *laggingCache) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.applies++
	return c.Client.Apply(ctx, obj, opts...)
}

func TestAChildCreatedMomentsAgoIsNotAppliedAgain(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	lagging := &laggingCache{Client: k8s}
	key := types.NamespacedName{Namespace: ns, Name: "svc"}
	apply := func(justCreated bool) applyResult {
		desired := corev1ac.Service(key.Name, ns).WithSpec(corev1ac.ServiceSpec().
			WithClusterIP(corev1.ClusterIPNone).WithPorts(corev1ac.ServicePort().WithName("p2p").WithPort(18444)))
		result, err := applyIfChanged(ctx, lagging, key, &corev1.Service{}, desired, corev1ac.ExtractService, justCreated)
		g.Expect(err).NotTo(HaveOccurred())
		return result
	}

	g.Expect(apply(false)).To(Equal(created))
	g.Expect(k8s.Get(ctx, key, &corev1.Service{})).To(Succeed())
	g.Expect(apply(true)).To(Equal(awaited), "created moments ago: the cache is behind, not the cluster")
	g.Expect(lagging.applies).To(Equal(1))

	g.Expect(apply(false)).To(Equal(created), "after the cache lag, a child still missing is applied again")
	g.Expect(lagging.applies).To(Equal(2))
}

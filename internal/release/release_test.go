package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	"sigs.k8s.io/yaml"
)

func TestPinBundle(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "bundle")
	const op = "127.0.0.1:5000/bitcoin-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	related, err := PinBundle("../../bundle", dst, op, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dst, "manifests", "bitcoin-operator.clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csv := &v1alpha1.ClusterServiceVersion{}
	if err := yaml.UnmarshalStrict(data, csv); err != nil {
		t.Fatal(err)
	}
	for _, d := range csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Image != op {
				t.Errorf("container %s runs %s, not the operator by digest", c.Name, c.Image)
			}
		}
	}
	if len(csv.Spec.RelatedImages) != len(related) || csv.Spec.RelatedImages[0].Image == "" {
		t.Errorf("relatedImages %v, returned %v", csv.Spec.RelatedImages, related)
	}
	var found bool
	for _, r := range csv.Spec.RelatedImages {
		found = found || (r.Name == "operator" && r.Image == op)
		if r.Name != "operator" && !strings.Contains(r.Image, "@sha256:") && !strings.Contains(r.Image, ":") {
			t.Errorf("related image %s has neither tag nor digest: %s", r.Name, r.Image)
		}
	}
	if !found {
		t.Errorf("relatedImages %v lacks the operator", csv.Spec.RelatedImages)
	}
	committed, _ := os.ReadFile("../../bundle/manifests/bitcoin-operator.clusterserviceversion.yaml")
	if strings.Contains(string(committed), "@sha256:") {
		t.Error("PinBundle changed the committed bundle")
	}
}

func TestPinBundleRewritesRelatedImageVariables(t *testing.T) {
	csv := map[string]any{"spec": map[string]any{"install": map[string]any{"spec": map[string]any{
		"deployments": []any{map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"image": "x:v1", "env": []any{
				map[string]any{"name": "RELATED_IMAGE_BITCOIN_CORE", "value": "bitcoin/bitcoin:28.1"},
				map[string]any{"name": "OTHER", "value": "not/an:image"},
			}}}}}}}}}}}}
	pinned := "bitcoin/bitcoin@sha256:" + strings.Repeat("ab", 32)
	images, err := pin(csv, "op@sha256:00", map[string]string{"bitcoin/bitcoin:28.1": pinned})
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{{Name: "bitcoin-core", Image: pinned}, {Name: "operator", Image: "op@sha256:00"}}
	if len(images) != 2 || images[0] != want[0] || images[1] != want[1] {
		t.Errorf("relatedImages %v, want %v", images, want)
	}
}

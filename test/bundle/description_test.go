package bundle_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	"sigs.k8s.io/yaml"
)

// foldableMarker finds "---" where a YAML emitter folding a long line at a space could
// put it at the start of a line, which YAML reads as a document separator.
// operator-sdk v1.33's `run bundle` folds the CSV description into the catalog it
// writes, and `opm serve` then refuses that catalog ("missing root schema field"): a
// markdown table's "| --- | --- |" did exactly that.
var foldableMarker = regexp.MustCompile(`(^|\s)---`)

func TestDescriptionHasNoFoldableDocumentMarker(t *testing.T) {
	for _, path := range []string{
		"../../config/manifests/bases/bitcoin-operator.clusterserviceversion.yaml",
		"../../bundle/manifests/bitcoin-operator.clusterserviceversion.yaml",
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		csv := &v1alpha1.ClusterServiceVersion{}
		if err := yaml.Unmarshal(data, csv); err != nil {
			t.Fatal(err)
		}
		if loc := foldableMarker.FindStringIndex(csv.Spec.Description); loc != nil {
			d := csv.Spec.Description
			t.Errorf("%s: the description has %q at %d: write table separators as |---|---|",
				path, d[max(0, loc[0]-20):min(len(d), loc[1]+20)], loc[0])
		}
	}
}

// Package bundle_test validates the committed OLM bundle with the current
// operator-framework/api validators. operator-sdk v1.33, which `make bundle`
// runs, embeds an older copy of them; a bundle must satisfy both.
package bundle_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	scapiv1alpha3 "github.com/operator-framework/api/pkg/apis/scorecard/v1alpha3"
	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The validators `operator-sdk bundle validate --select-optional suite=operatorframework`
// selects, on top of the default bundle validators.
var operatorFrameworkSuite = validation.DefaultBundleValidators.WithValidators(
	validation.OperatorHubV2Validator,
	validation.StandardCapabilitiesValidator,
	validation.StandardCategoriesValidator,
	validation.AlphaDeprecatedAPIsValidator,
	validation.GoodPracticesValidator,
)

func TestBundleValid(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir("../../bundle")
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	if bundle.CSV == nil {
		t.Fatal("bundle/ has no ClusterServiceVersion")
	}
	if len(bundle.Channels) == 0 || bundle.DefaultChannel == "" {
		t.Errorf("bundle/metadata/annotations.yaml names no channels (%q) or no default channel (%q)",
			bundle.Channels, bundle.DefaultChannel)
	}

	// As operator-sdk passes --optional-values: an empty map lets the deprecated-API
	// check use the CSV's minKubeVersion.
	objs := append(bundle.ObjectsToValidate(), map[string]string{})
	var problems int
	for _, result := range operatorFrameworkSuite.Validate(objs...) {
		for _, e := range append(append([]errors.Error{}, result.Errors...), result.Warnings...) {
			t.Errorf("%s: %s", result.Name, e)
			problems++
		}
	}
	if problems == 0 {
		t.Logf("bundle %s (package %s, channels %q, default %q): no errors, no warnings",
			bundle.CSV.Name, bundle.Package, bundle.Channels, bundle.DefaultChannel)
	}
}

// The scorecard's olm-spec-descriptors test only looks at the fields the sample sets,
// and olm-status-descriptors only when the sample carries a status: this checks
// every top-level field of the schema, with at least one x-descriptor each.
func TestEveryTopLevelFieldHasADescriptor(t *testing.T) {
	bundle, err := manifests.GetBundleFromDir("../../bundle")
	if err != nil {
		t.Fatalf("loading bundle/: %v", err)
	}
	for _, crd := range bundle.V1CRDs {
		var owned *v1alpha1.CRDDescription
		for i, o := range bundle.CSV.Spec.CustomResourceDefinitions.Owned {
			if o.Name == crd.Name {
				owned = &bundle.CSV.Spec.CustomResourceDefinitions.Owned[i]
			}
		}
		if owned == nil {
			t.Errorf("CRD %s is not among the CSV's owned CRDs", crd.Name)
			continue
		}
		if len(owned.Resources) == 0 {
			t.Errorf("owned CRD %s lists no resources", crd.Name)
		}
		for _, version := range crd.Spec.Versions {
			if version.Name != owned.Version {
				continue
			}
			spec, status := map[string][]string{}, map[string][]string{}
			for _, d := range owned.SpecDescriptors {
				spec[d.Path] = d.XDescriptors
			}
			for _, d := range owned.StatusDescriptors {
				status[d.Path] = d.XDescriptors
			}
			props := version.Schema.OpenAPIV3Schema.Properties
			checkDescriptors(t, crd.Name, "spec", props["spec"].Properties, spec)
			checkDescriptors(t, crd.Name, "status", props["status"].Properties, status)
		}
	}
}

func checkDescriptors(t *testing.T, crd, block string, fields map[string]apiextensionsv1.JSONSchemaProps, xDescriptors map[string][]string) {
	t.Helper()
	if len(fields) == 0 {
		t.Errorf("%s: the schema has no %s fields", crd, block)
	}
	for field := range fields {
		x, ok := xDescriptors[field]
		switch {
		case !ok:
			t.Errorf("%s: %s.%s has no %s descriptor: add a +operator-sdk:csv:customresourcedefinitions marker and run make bundle", crd, block, field, block)
		case len(x) == 0:
			t.Errorf("%s: the %s descriptor of %s.%s has no x-descriptors", crd, block, block, field)
		}
	}
}

// bundle/tests/scorecard/config.yaml must run the scorecard-test image's six tests.
func TestScorecardConfigHasTheDefaultTests(t *testing.T) {
	data, err := os.ReadFile("../../bundle/tests/scorecard/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var config scapiv1alpha3.Configuration
	if err := yaml.UnmarshalStrict(data, &config); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, stage := range config.Stages {
		for _, test := range stage.Tests {
			if len(test.Entrypoint) == 2 && test.Entrypoint[0] == "scorecard-test" {
				got[test.Entrypoint[1]] = true
			}
		}
	}
	sdk := operatorSDKVersion(t)
	for _, stage := range config.Stages {
		for _, test := range stage.Tests {
			if _, tag, _ := strings.Cut(test.Image, ":"); tag != sdk {
				t.Errorf("scorecard test %v runs image %s, not the tag of operator-sdk %s (hack/tools/operator-sdk/go.mod): change config/scorecard/patches", test.Entrypoint, test.Image, sdk)
			}
		}
	}
	for _, want := range []string{
		"basic-check-spec", "olm-bundle-validation", "olm-crds-have-validation",
		"olm-crds-have-resources", "olm-spec-descriptors", "olm-status-descriptors",
	} {
		if !got[want] {
			t.Errorf("bundle/tests/scorecard/config.yaml does not run %s", want)
		}
	}
}

// operatorSDKVersion is the operator-sdk version hack/tools/operator-sdk/go.mod
// requires: the one place it is written.
func operatorSDKVersion(t *testing.T) string {
	data, err := os.ReadFile("../../hack/tools/operator-sdk/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(?:require)?\s*github\.com/operator-framework/operator-sdk (v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("hack/tools/operator-sdk/go.mod requires no operator-sdk")
	}
	return string(m[1])
}

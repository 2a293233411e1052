package bundle_test

import (
	"os"
	"strings"
	"testing"
)

// TestNoDashesThatSplitTheSDKsCatalog: operator-sdk v1.33's `run bundle` cuts the
// file-based catalog it renders for this bundle at every "---" before writing it into
// ConfigMaps (strings.Split in its fbcindex package), wherever the "---" is, and joins
// the pieces with document separators. A "---" inside a text field (the CSV
// description's markdown table had "| --- | --- |") thus splits a document in the
// middle, and `opm serve` refuses the catalog ("missing root schema field"): the
// registry pod would crash-loop in any cluster. So no manifest may hold "---" except as
// a document separator line of its own.
func TestNoDashesThatSplitTheSDKsCatalog(t *testing.T) {
	for _, dir := range []string{"../../bundle/manifests", "../../config/manifests/bases"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(dir + "/" + e.Name())
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, "---") && strings.TrimSpace(line) != "---" {
					t.Errorf("%s/%s:%d holds %q", dir, e.Name(), i+1, line)
				}
			}
		}
	}
}

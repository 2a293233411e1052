//go:build olm

package olm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// previousRelease is the commit whose operator plays 0.1.0 in TestUpgrade: main just
// before the merge of issue 12's sections 3 and 4.1 (29dd621), the last operator whose
// chart gave every StatefulSet persistentVolumeClaimRetentionPolicy whenDeleted:
// Delete. Both CSVs of the test's catalog come from this tree's bundle, so without it
// the two versions would run the same code and the move from Delete to Retain could
// not show.
const previousRelease = "9fc8168ed5eb343ff835819f3f6b7cbb17889af0"

// buildPrevious builds the operator of previousRelease from the repository's own
// history (git archive of that commit, then go build): no network but the Go module
// proxy, which the suite needs anyway. A clone without that commit (a shallow one)
// gets "": the test then runs the current operator as 0.1.0 and says what it could
// not show, rather than failing a CI that clones shallow.
func buildPrevious(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	root, err := cluster.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	if err := exec.Command("git", "-C", root, "cat-file", "-e", previousRelease+"^{commit}").Run(); err != nil {
		t.Logf("NOT SHOWN: the move from whenDeleted Delete to Retain. This clone lacks commit %s "+
			"(a shallow clone?), so 0.1.0 runs the current operator; git fetch --unshallow to show it", previousRelease)
		return ""
	}
	dir := filepath.Join(lc.Dir, "previous")
	g.Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	var archive, stderr bytes.Buffer
	cmd := exec.Command("git", "-C", root, "archive", "--format=tar", previousRelease)
	cmd.Stdout, cmd.Stderr = &archive, &stderr
	g.Expect(cmd.Run()).To(Succeed(), "git archive: %s", stderr.String())
	untar := exec.Command("tar", "-x", "-C", dir)
	untar.Stdin = &archive
	out, err := untar.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "tar: %s", out)
	bin := filepath.Join(dir, "manager")
	build := exec.CommandContext(context.Background(), "go", "build", "-o", bin, "./cmd")
	build.Dir = dir
	out, err = build.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), fmt.Sprintf("go build of %s: %s", previousRelease, out))
	return bin
}

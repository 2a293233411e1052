// Command scorecard runs the tests of a bundle's scorecard configuration with the
// scorecard-test binary, as `operator-sdk scorecard` runs them in a pod, but
// without a cluster or a container runtime: `make scorecard-local`.
//
// scorecard-test reads the bundle from the fixed path /bundle. Each test runs
// chrooted into a throwaway directory that holds only the (static) binary and a
// copy of the bundle at /bundle, inside a new user namespace in which the caller
// is root: nothing outside that directory is touched, no mount is made and no
// privilege is needed beyond unprivileged user namespaces.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	scapiv1alpha3 "github.com/operator-framework/api/pkg/apis/scorecard/v1alpha3"
	"sigs.k8s.io/yaml"
)

func main() {
	bundle := flag.String("bundle", "bundle", "the bundle directory")
	bin := flag.String("scorecard-test", "scorecard-test", "the scorecard-test binary, statically linked")
	flag.Parse()
	if err := run(*bundle, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "scorecard:", err)
		os.Exit(1)
	}
}

func run(bundle, bin string) error {
	config, err := readConfig(filepath.Join(bundle, "tests", "scorecard", "config.yaml"))
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "scorecard-root-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if err := os.CopyFS(filepath.Join(root, "bundle"), os.DirFS(bundle)); err != nil {
		return fmt.Errorf("failed to copy the bundle: %w", err)
	}
	if err := copyFile(bin, filepath.Join(root, "scorecard-test"), 0o755); err != nil {
		return fmt.Errorf("failed to copy scorecard-test: %w", err)
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return err
	}

	var failed []string
	for _, stage := range config.Stages {
		for _, test := range stage.Tests {
			name := test.Labels["test"]
			if len(test.Entrypoint) < 2 || test.Entrypoint[0] != "scorecard-test" {
				return fmt.Errorf("test %s: entrypoint %q is not scorecard-test's", name, test.Entrypoint)
			}
			status, err := runTest(root, test.Entrypoint[1:])
			if err != nil {
				return fmt.Errorf("test %s: %w", name, err)
			}
			for _, r := range status.Results {
				fmt.Printf("%-28s %s\n", r.Name, r.State)
				for _, e := range r.Errors {
					fmt.Printf("    error: %s\n", e)
				}
				for _, s := range r.Suggestions {
					fmt.Printf("    suggestion: %s\n", s)
				}
				if r.State != scapiv1alpha3.PassState || len(r.Errors) > 0 {
					failed = append(failed, r.Name)
				}
			}
			if len(status.Results) == 0 {
				failed = append(failed, name+" (no result)")
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func readConfig(path string) (*scapiv1alpha3.Configuration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var config scapiv1alpha3.Configuration
	if err := yaml.UnmarshalStrict(data, &config); err != nil {
		return nil, fmt.Errorf("failed to decode %s: %w", path, err)
	}
	return &config, nil
}

// runTest runs /scorecard-test chrooted into root. exec.Cmd's Path is used as is
// after the chroot, so it is the path inside root.
func runTest(root string, args []string) (*scapiv1alpha3.TestStatus, error) {
	var stdout, stderr bytes.Buffer
	cmd := &exec.Cmd{
		Path:   "/scorecard-test",
		Args:   append([]string{"scorecard-test"}, args...),
		Dir:    "/",
		Env:    []string{"HOME=/tmp", "TMPDIR=/tmp"},
		Stdout: &stdout,
		Stderr: &stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:                     root,
			Cloneflags:                 syscall.CLONE_NEWUSER,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
			GidMappingsEnableSetgroups: false,
			Pdeathsig:                  syscall.SIGKILL,
		},
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var status scapiv1alpha3.TestStatus
	if err := json.Unmarshal(stdout.Bytes(), &status); err != nil {
		return nil, fmt.Errorf("failed to decode the result %q: %w", stdout.String(), err)
	}
	return &status, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

package olmpods

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteGunzipped(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte("schema: olm.package\n"))
	_ = zw.Close()
	path := filepath.Join(t.TempDir(), "cm", "extraFBC.yaml")
	if err := writeGunzipped(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "schema: olm.package\n" {
		t.Errorf("wrote %q", data)
	}
}

func TestForward(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err == nil {
			_, _ = io.Copy(c, c) // echo
			c.Close()
		}
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go forward(l, target.Addr().String())
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestContainerArgs(t *testing.T) {
	ep, cmd := []string{"/bin/opm"}, []string{"serve", "/configs"}
	for _, tc := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/bin/opm", "serve", "/configs"}},
		{nil, []string{"serve", "/other"}, []string{"/bin/opm", "serve", "/other"}},
		{[]string{"/bin/sh"}, nil, []string{"/bin/sh"}},
	} {
		if got := containerArgs(ep, cmd, tc.command, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("command %q args %q: %q, want %q", tc.command, tc.args, got, tc.want)
		}
	}
}

func TestInside(t *testing.T) {
	for arg, want := range map[string]string{
		"/configs":           "/r/configs",
		"--cache-dir=/tmp/c": "--cache-dir=/r/tmp/c",
		"serve":              "serve",
		"--port=50051":       "--port=50051",
		"a=/b":               "a=/b",
	} {
		if got := inside("/r", arg); got != want {
			t.Errorf("%s: %s, want %s", arg, got, want)
		}
	}
}

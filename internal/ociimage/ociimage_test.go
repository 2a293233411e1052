package ociimage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLayerIsSortedWithParentsAndFixedTimes(t *testing.T) {
	files := []File{{Path: "/b/c/d", Mode: 0o644, Data: []byte("d")}, {Path: "/a", Mode: 0o755, Data: []byte("a")}}
	img, err := Build(nil, Config{User: "1"}, must(Layer(files)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Files(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/a", "/b", "/b/c", "/b/c/d"} {
		if _, ok := got[p]; !ok {
			t.Errorf("no %s in %v", p, got)
		}
	}
	if !got["/b"].Dir || Perm(got["/b"]) != 0o755 {
		t.Errorf("/b: %+v", got["/b"])
	}
	reordered, _ := Build(nil, Config{User: "1"}, must(Layer([]File{files[1], files[0]})))
	a, _ := img.Digest()
	b, _ := reordered.Digest()
	if a != b {
		t.Errorf("the order of the files changed the digest: %s, %s", a, b)
	}
}

func TestDirFilesNormalisesModesAndExtractRoundTrips(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "x", "f"), []byte("f"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := DirFiles(src, "/dst")
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(nil, Config{}, must(Layer(files)))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Extract(img, out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "dst", "x", "f"))
	if err != nil || string(data) != "f" {
		t.Errorf("extracted %q, %v", data, err)
	}
	got, _ := Files(img)
	if Perm(got["/dst/x/f"]) != 0o644 || Perm(got["/dst/x"]) != 0o755 {
		t.Errorf("modes not normalised: %v %v", got["/dst/x/f"].Mode, got["/dst/x"].Mode)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

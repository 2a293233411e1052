package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Files returns the image's flattened file system (later layers win, whiteouts
// applied), keyed by absolute path: what a container of the image would see.
func Files(img v1.Image) (map[string]File, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]File{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		f := File{Path: "/" + strings.Trim(path.Clean(h.Name), "/"), Mode: h.FileInfo().Mode(), UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeDir:
			f.Dir = true
		case tar.TypeReg:
			if f.Data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: entries of type %c are not supported", h.Name, h.Typeflag)
		}
		files[f.Path] = f
	}
}

// Extract writes the image's files under dir, as an unpacker would; owners are not
// kept (the caller need not be root), modes are.
func Extract(img v1.Image, dir string) error {
	files, err := Files(img)
	if err != nil {
		return err
	}
	for _, f := range withParents(values(files)) {
		target := filepath.Join(dir, filepath.FromSlash(f.Path))
		if f.Dir {
			err = os.MkdirAll(target, 0o755)
		} else {
			err = os.WriteFile(target, f.Data, f.Mode.Perm()|0o200)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func values(m map[string]File) []File {
	out := make([]File, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	return out
}

// Mode bits the tests compare; fs.FileMode of a tar header carries more.
func Perm(f File) fs.FileMode { return f.Mode & (fs.ModePerm | fs.ModeSticky) }

package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// errNotAFolder: a part of a user's folder is a symbolic link or a file,
// planted there to lead a write out of it; nothing is written through it.
var errNotAFolder = errors.New("refused: not a folder of the server's own")

// openConfined opens an os.Root on home/parts…, creating missing folders
// (mode 0700) and refusing a part that is a symbolic link or not a folder,
// so that the root opened is the folder the server made and not where a
// planted link points. home itself is the operator's and may be a link.
func openConfined(home string, parts ...string) (*os.Root, error) {
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		sub, err := openFolder(root, p)
		root.Close()
		if err != nil {
			// The callers name the folder; the user's folder name means
			// nothing to the user.
			return nil, err
		}
		root = sub
	}
	return root, nil
}

// openFolder opens the folder name directly inside root, making it when
// missing.
func openFolder(root *os.Root, name string) (*os.Root, error) {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		fi, err = root.Lstat(name)
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() { // a symbolic link is not a dir to Lstat
		return nil, fmt.Errorf("%w (a %s)", errNotAFolder, kind(fi.Mode()))
	}
	sub, err := root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	// A link swapped in between Lstat and OpenRoot would open another
	// folder: the one opened must be the one looked at.
	if st, err := sub.Stat("."); err != nil || !os.SameFile(fi, st) {
		sub.Close()
		return nil, fmt.Errorf("%w (replaced while it was opened)", errNotAFolder)
	}
	return sub, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}

// confinedDir checks home/parts… as openConfined does and returns its path,
// for writers that take a path (figure exports). The check is made at each
// call, just before the write.
func confinedDir(home string, parts ...string) (string, error) {
	r, err := openConfined(home, parts...)
	if err != nil {
		return "", err
	}
	r.Close()
	return filepath.Join(append([]string{home}, parts...)...), nil
}

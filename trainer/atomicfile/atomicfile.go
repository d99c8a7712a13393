// Package atomicfile writes files so that readers, and a process that
// starts after a crash, see either the old file or the whole new one:
// models saved with trainer.SaveModel and the store's checkpoints.
package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Write replaces the file at path with what write writes, so
// that readers see either the old file or the complete new one, even after
// a crash: it writes a temporary file in the same folder, syncs and closes
// it, gives it mode perm (exactly, not masked by the umask), renames it
// over path and syncs the folder. If write or any step up to the rename
// fails, the temporary file is removed, path is untouched and the first
// error is returned; if only the folder sync fails, the new file is in
// place but the error is returned, as the rename may not survive a crash.
// Writes reaching write's io.Writer are buffered. The temporary file is
// named "."+base+".tmp" and random digits; IsTemp recognises it, so a
// sweep after a crash can remove what a write left behind.
func Write(path string, perm fs.FileMode, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempMark+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may already be closed; the first error is kept
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// tempMark separates a temporary file's target name from its random part.
const tempMark = ".tmp"

// IsTemp reports whether name (a base name) is a temporary file that
// Write creates and renames away or removes unless the process
// dies in between.
func IsTemp(name string) bool {
	i := strings.LastIndex(name, tempMark)
	if !strings.HasPrefix(name, ".") || i < 2 {
		return false
	}
	for _, c := range name[i+len(tempMark):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// syncDir makes a rename in dir durable. Systems that cannot sync a folder
// (Windows cannot open one for it) report an error that is ignored: the
// rename has happened and there is nothing more to do there.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

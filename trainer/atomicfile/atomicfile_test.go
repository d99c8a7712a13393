package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := Write(p, 0o600, write("first")); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, 0o640, write("second")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "second" {
		t.Fatalf("content %q, %v, want second", b, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}

	// A failing write leaves the old file as it was and no temporary file.
	boom := errors.New("boom")
	err = Write(p, 0o644, func(w io.Writer) error {
		io.WriteString(w, strings.Repeat("partial", 10000)) // more than the buffer
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want the write's error", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "second" {
		t.Errorf("content after a failed write %q, want second", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only f.bin", names)
	}

	// A folder that does not exist is an error, not a panic.
	if err := Write(filepath.Join(dir, "no", "f"), 0o644, write("x")); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}

func TestIsTemp(t *testing.T) {
	dir := t.TempDir()
	// What Write leaves while it writes is recognised.
	var seen string
	err := Write(filepath.Join(dir, "model.safetensors"), 0o644, func(io.Writer) error {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			seen = e.Name()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !IsTemp(seen) {
		t.Errorf("IsTemp(%q) = false for Write's temporary file", seen)
	}
	for _, name := range []string{"model.safetensors", ".tmp", "a.tmp1", ".a.tmp1x", ".hidden", "ckpt-3-last.safetensors"} {
		if IsTemp(name) {
			t.Errorf("IsTemp(%q) = true", name)
		}
	}
}

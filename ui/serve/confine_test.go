package serve

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"thaw/store/engine"
)

// emptyDir fails the test when dir holds anything.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("written outside the user's folder: %s", filepath.Join(dir, e.Name()))
	}
}

func TestOpenConfined(t *testing.T) {
	cases := []struct {
		name  string
		plant func(t *testing.T, home, outside string) // before the open
		parts []string
		ok    bool
	}{
		{"made when missing", nil, []string{"u", "plans"}, true},
		{"real folders", func(t *testing.T, home, _ string) {
			os.MkdirAll(filepath.Join(home, "u", "plans"), 0o700)
		}, []string{"u", "plans"}, true},
		{"plans a link out", func(t *testing.T, home, outside string) {
			os.MkdirAll(filepath.Join(home, "u"), 0o700)
			must(t, os.Symlink(outside, filepath.Join(home, "u", "plans")))
		}, []string{"u", "plans"}, false},
		{"user folder a link out", func(t *testing.T, home, outside string) {
			must(t, os.Symlink(outside, filepath.Join(home, "u")))
		}, []string{"u", "plans"}, false},
		{"a link to another user's folder", func(t *testing.T, home, _ string) {
			os.MkdirAll(filepath.Join(home, "v", "run"), 0o700)
			os.MkdirAll(filepath.Join(home, "u"), 0o700)
			must(t, os.Symlink(filepath.Join(home, "v", "run"), filepath.Join(home, "u", "run")))
		}, []string{"u", "run"}, false},
		{"a dangling link", func(t *testing.T, home, outside string) {
			os.MkdirAll(filepath.Join(home, "u"), 0o700)
			must(t, os.Symlink(filepath.Join(outside, "later"), filepath.Join(home, "u", "run")))
		}, []string{"u", "run"}, false},
		{"a file", func(t *testing.T, home, _ string) {
			os.MkdirAll(filepath.Join(home, "u"), 0o700)
			must(t, os.WriteFile(filepath.Join(home, "u", "run"), nil, 0o600))
		}, []string{"u", "run"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home, outside := t.TempDir(), t.TempDir()
			if c.plant != nil {
				c.plant(t, home, outside)
			}
			root, err := openConfined(home, c.parts...)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				must(t, root.WriteFile("x", []byte("x"), 0o600))
				root.Close()
				if _, err := os.Stat(filepath.Join(append([]string{home}, append(c.parts, "x")...)...)); err != nil {
					t.Errorf("not written where asked: %v", err)
				}
				return
			}
			if err == nil {
				root.WriteFile("x", []byte("x"), 0o600)
				root.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, errNotAFolder) {
				t.Errorf("err = %v, want errNotAFolder", err)
			}
			if _, err := confinedDir(home, c.parts...); err == nil {
				t.Error("confinedDir let it through")
			}
			emptyDir(t, outside)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPlantedLinksAreNotWrittenThrough is issue 23's acceptance check of
// writes: a symbolic link planted as the plans folder (after the session
// started) and as a run's folder: the plan save and the figure export are
// refused, and nothing is written where the links point.
func TestPlantedLinksAreNotWrittenThrough(t *testing.T) {
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	home := filepath.Join(rs.runs.cfg.Home, userDir(userOf(alice)))
	outside := t.TempDir()

	tm := openTerminal(t, rs.mustDial(t, alice), 160, 40)
	tm.waitScreen(t, "mnist8-mlp")
	tm.stdin.Write([]byte("jj\r")) // mnist8-mlp → Blocks
	tm.waitScreen(t, "trainable")
	tm.stdin.Write([]byte("\r")) // → Plan
	tm.waitScreen(t, " train / ")
	// The session has made and checked its plan folder; the link comes
	// after.
	plans := filepath.Join(home, "plans")
	must(t, os.RemoveAll(plans))
	must(t, os.Symlink(outside, plans))
	tm.stdin.Write([]byte("s\x15mine.json\r"))
	tm.waitScreen(t, "plan folder: refused: not a folder")
	tm.stdin.Write([]byte("\x1b"))
	emptyDir(t, outside)

	run, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 100), engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.Symlink(outside, filepath.Join(home, run.ID)))
	tm2 := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	waitStep(t, tm2, engine.Short(run.ID), 45) // an evaluation is stored
	tm2.stdin.Write([]byte("e"))
	tm2.waitScreen(t, "export: files of run", "refused: not a folder")
	emptyDir(t, outside)
	if _, err := rs.runs.FileDir(t.Context(), userOf(alice), run.ID); err == nil {
		t.Error("FileDir handed out a linked run folder")
	}
	if _, err := rs.runs.PlanRoot(userOf(alice)); err == nil {
		t.Error("PlanRoot opened a linked plans folder")
	}
}

package main

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// A run on a disk that fills up fails, marked as an I/O failure, keeps its
// good checkpoints, and once there is room thaw resume takes it to the
// weights of a run that never lacked space. The disk is a real tmpfs of a
// few megabytes, so the test needs root (CI has it) and skips otherwise.
func TestDiskFullRunResumes(t *testing.T) {
	bin := thawBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", disk).Run() })

	// A model whose checkpoints take about a megabyte each.
	fx := newFixture(t)
	cfg := tinyConfig("wide", "a", "b", "c")
	cfg.Blocks[0].Layers[0].OutFeatures = 256
	cfg.Blocks[1].Layers[0].InFeatures, cfg.Blocks[1].Layers[0].OutFeatures = 256, 256
	cfg.Blocks[2].Layers[0].InFeatures = 256
	m, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(fx.dir, "wide")
	if err := trainer.SaveModel(model, m); err != nil {
		t.Fatal(err)
	}
	args := []string{"--model", model, "--data", fx.data, "--epochs", "2", "--eval-every", "2", "--seed", "4"}
	full := filepath.Join(disk, "store")

	out, err := exec.Command(bin, append([]string{"train", "--store", full}, args...)...).CombinedOutput()
	if code := exitCodeOf(err); code != 1 {
		t.Fatalf("train on a full disk: exit %d, want 1:\n%s", code, out)
	}
	st, err := store.OpenForReading(full)
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.Run(context.Background(), store.Latest)
	st.Close()
	if err != nil || r.Status != trainer.StatusFailed || !strings.Contains(r.Error, "no space left") {
		t.Fatalf("stored run: %s %q, %v; want failed for want of space\n%s", r.Status, r.Error, err, out)
	}

	if out, err := exec.Command("mount", "-o", "remount,size=64m", disk).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	if out, err := exec.Command(bin, "resume", "--store", full, r.ID).CombinedOutput(); err != nil {
		t.Fatalf("resume once there is room: %v\n%s", err, out)
	}
	ref := filepath.Join(fx.dir, "ref-store")
	refID, _, code := storeRun(t, context.Background(), ref, args...)
	if code != 0 {
		t.Fatalf("reference run: exit %d", code)
	}
	a, err := store.OpenForReading(full)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := store.OpenForReading(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !sameWeights(finalWeights(t, a, r.ID), finalWeights(t, b, refID)) {
		t.Error("the resumed run's final weights differ from a run that had room")
	}
}

// exitCodeOf is the exit code an exec error carries, 0 for none.
func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

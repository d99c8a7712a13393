package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// A run on a disk that fills up stops at once, failed on I/O (or, when
// the disk has no room left even for that, interrupted: its process is
// gone), keeps its good checkpoints, and once there is room thaw resume
// takes it at once to the record of a run that never lacked space: the
// same stages, checkpoints and metric rows. The disk fills while the run
// trains. The store's root, with the database, and its runs/ folder, with
// the checkpoint files, are on two disks, so that the first write to fail
// is a metrics write (the root's disk is full: the database cannot grow)
// or a checkpoint file (runs/ is full). The disks are real tmpfs mounts,
// so the test needs root (CI has it) and skips otherwise.
func TestDiskFullRunResumes(t *testing.T) {
	bin := thawBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
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
	// Every step evaluates, so every step is reported and stored at once.
	args := []string{"--model", model, "--data", fx.data, "--epochs", "2", "--eval-every", "1", "--seed", "4"}
	ref := filepath.Join(fx.dir, "ref-store")
	refID, _, code := storeRun(t, context.Background(), ref, args...)
	if code != 0 {
		t.Fatalf("reference run: exit %d", code)
	}

	for _, tc := range []struct {
		name string
		// small is the part of the store on the small disk: the root,
		// with the database, or runs/, with the checkpoint files; the
		// other part is on a disk with room.
		small string
		want  string // in the error: which write failed
	}{
		{"metrics write", ".", "the database cannot grow"},
		{"checkpoint write", "runs", "checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			small, roomy := t.TempDir(), t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a tmpfs: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("umount", small).Run() })
			// The store's runs/ is a link to a folder on the other disk.
			full, runs := filepath.Join(small, "store"), filepath.Join(roomy, "runs")
			if tc.small == "runs" {
				full, runs = filepath.Join(roomy, "store"), filepath.Join(small, "runs")
			}
			for _, d := range []string{full, runs} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(runs, filepath.Join(full, "runs")); err != nil {
				t.Fatal(err)
			}
			filler := filepath.Join(small, "filler")

			cmd := exec.Command(bin, append([]string{"train", "--store", full}, args...)...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Fill the disk at the fifth evaluation.
			stepRE := regexp.MustCompile(`step (\d+)/`)
			var log strings.Builder
			sc := bufio.NewScanner(stderr)
			evals, lastStep, filledAt := 0, 0, -1
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if m := stepRE.FindStringSubmatch(sc.Text()); m != nil {
					lastStep, _ = strconv.Atoi(m[1])
					if evals++; evals == 5 {
						fill(t, filler)
						filledAt = lastStep
					}
				}
			}
			err = cmd.Wait()
			if code := exitCodeOf(err); code != 1 {
				t.Fatalf("train on a full disk: exit %d, want 1:\n%s", code, log.String())
			}
			if !strings.Contains(log.String(), "no space left") || !strings.Contains(log.String(), tc.want) {
				t.Errorf("the error does not say that the disk is full (%q):\n%s", tc.want, log.String())
			}

			st, err := store.OpenForReading(full)
			if err != nil {
				t.Fatal(err)
			}
			r, err := st.Run(context.Background(), store.Latest)
			if err != nil {
				t.Fatal(err)
			}
			live, err := st.Liveness(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			losses, err := st.Series(context.Background(), r.ID, trainer.MetricTrainLoss, 0)
			st.Close()
			if err != nil || len(losses) == 0 {
				t.Fatalf("stored losses: %d, %v", len(losses), err)
			}
			stored := losses[len(losses)-1].From
			switch {
			case r.Status == trainer.StatusFailed && strings.Contains(r.Error, "no space left"):
			case r.Status.Live() && live.Status == trainer.StatusInterrupted:
				t.Logf("no room to record the failure: the run reads as interrupted, its process gone")
			default:
				t.Fatalf("stored run: %s (judged %s) %q; want failed for want of space\n%s", r.Status, live.Status, r.Error, log.String())
			}
			// Every step is reported: the trainer goes on for at most the
			// step during which the failed write reached the recorder.
			t.Logf("disk filled after step %d; losses stored to step %d; the trainer's last report at step %d; stored %s %q",
				filledAt, stored, lastStep, r.Status, r.Error)
			if int64(lastStep) > stored+2 {
				t.Errorf("the trainer reported step %d, %d steps past the last stored one", lastStep, int64(lastStep)-stored)
			}

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "resume", "--store", full, r.ID).CombinedOutput(); err != nil {
				t.Fatalf("resume at once, now that there is room: %v\n%s", err, out)
			}
			a := openSoakStore(t, full)
			defer a.Close()
			if err := sameRecord(t, openSoakStore(t, ref), refID, a, r.ID); err != nil {
				t.Errorf("resumed after the disk filled: %v", err)
			}
		})
	}
}

// fill writes zeros to path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		_, err := f.Write(buf)
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, io.ErrShortWrite) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
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

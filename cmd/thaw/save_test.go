package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

func readWeights(t *testing.T, dir string) []trainer.SafeTensor {
	t.Helper()
	m, err := trainer.LoadModel[float32](dir)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

// thaw save writes a loadable model from any stored checkpoint: best is
// what train --save wrote, last the final weights, stage:K the end of
// stage K.
func TestSaveCheckpoint(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	tuned := filepath.Join(fx.dir, "tuned")
	id, _, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--epochs", "2", "--lr", "0.05", "--save", tuned)
	if code != 0 {
		t.Fatalf("train: exit %d", code)
	}
	save := func(which string) (string, string, int) {
		out := filepath.Join(t.TempDir(), "model")
		_, stderr, code := runMain(t, ctx, &Main{}, "save", "--store", dir, id, "--checkpoint", which, "-o", out)
		return out, stderr, code
	}

	best, stderr, code := save("best")
	if code != 0 {
		t.Fatalf("save best: exit %d:\n%s", code, stderr)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		a, _ := os.ReadFile(filepath.Join(best, f))
		b, _ := os.ReadFile(filepath.Join(tuned, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("save --checkpoint best: %s differs from what train --save wrote", f)
		}
	}

	st, err := store.OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	last, _, code := save("last")
	if code != 0 || !sameWeights(readWeights(t, last), finalWeights(t, st, id)) {
		t.Errorf("save --checkpoint last: exit %d, or not the final weights", code)
	}
	cs, _ := st.Checkpoints(ctx, id)
	st.Close()
	var stage1 store.Checkpoint
	for _, c := range cs {
		if c.Kind == store.KindStageEnd && c.Stage == 0 {
			stage1 = c
		}
	}
	s1, stderr, code := save("stage:1")
	if code != 0 || !strings.Contains(stderr, "stage-end checkpoint at step "+itoa(stage1.Step)) {
		t.Fatalf("save stage:1: exit %d:\n%s", code, stderr)
	}
	if sameWeights(readWeights(t, s1), readWeights(t, last)) {
		t.Error("stage:1 and last saved the same weights")
	}
	if _, stderr, code := runMain(t, ctx, &Main{}, "predict", "--model", s1, "--data", fx.data); code != 0 {
		t.Errorf("predict with the stage-1 model: exit %d:\n%s", code, stderr)
	}

	for which, want := range map[string]string{"step:99999": "no usable checkpoint at step 99999", "stage:0": "want best, last", "worst": "want best, last"} {
		if _, stderr, code := save(which); code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("save --checkpoint %s: exit %d, want 2 saying %q:\n%s", which, code, want, stderr)
		}
	}
	if _, stderr, code := runMain(t, ctx, &Main{}, "save", "--store", dir, id); code != 2 || !strings.Contains(stderr, "-o DIR") {
		t.Errorf("save without -o: exit %d:\n%s", code, stderr)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

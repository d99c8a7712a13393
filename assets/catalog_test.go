package assets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"thaw/trainer"
)

// TestCatalogMaxBytes: the catalogue passes its memory budget to the
// loaders, so a front-end's flag can lower or raise it.
func TestCatalogMaxBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.csv")
	body := "x,label\n" + strings.Repeat("1,a\n2,b\n", 50)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := trainer.DataRef{Path: path}
	_, err := (&Catalog{MaxBytes: 500}).Data(ref, []int{1}, SplitTrain)
	var ie trainer.InputError
	if !errors.Is(err, trainer.ErrTooLarge) || !errors.As(err, &ie) || !strings.Contains(err.Error(), "500 B limit") {
		t.Errorf("500-byte budget: %v, want an input error naming the limit", err)
	}
	ds, err := (&Catalog{}).Data(ref, []int{1}, SplitTrain)
	if err != nil || ds.Len() != 100 {
		t.Errorf("default budget: %v", err)
	}
}

// TestCatalogBudgetCountsBuiltInTasks: the built-in tasks' decoded data is
// counted against the same budget as a user's file, before it is
// allocated, whether a split is read whole or only its kept samples are
// decoded; the default budget holds every built-in task.
func TestCatalogBudgetCountsBuiltInTasks(t *testing.T) {
	small := &Catalog{MaxBytes: 1 << 20, MaxBytesName: "--max-data-bytes"}
	for _, name := range []string{"digits-5to9", "letters-n-z"} {
		_, err := small.Data(trainer.DataRef{Path: name}, nil, SplitTrain)
		if !errors.Is(err, trainer.ErrTooLarge) || !strings.Contains(err.Error(), "--max-data-bytes") {
			t.Errorf("%s under a 1 MiB budget: %v, want an error naming --max-data-bytes", name, err)
		}
	}
	ds, samples, err := small.TrainingData(trainer.DataRef{Path: "digits-5to9"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]int, ds.Len()) // every sample: 28×28 float32 each, far over 1 MiB
	for i := range all {
		all[i] = i
	}
	if _, err := samples(all); !errors.Is(err, trainer.ErrTooLarge) {
		t.Errorf("decoding all of digits-5to9 under a 1 MiB budget: %v, want ErrTooLarge", err)
	}
	if x, err := samples(all[:10]); err != nil || len(x) != 10*28*28 {
		t.Errorf("decoding 10 samples under a 1 MiB budget: %d values, %v", len(x), err)
	}
	for _, task := range Tasks() {
		for _, split := range []string{task.Train, task.Test} {
			if split == "" {
				continue
			}
			if _, err := (&Catalog{}).Data(trainer.DataRef{Path: task.Name}, nil, splitOf(task, split)); err != nil {
				t.Errorf("%s/%s under the default budget: %v", task.Name, split, err)
			}
		}
	}
}

// splitOf is the catalogue's name for split of task.
func splitOf(task Task, split string) DataSplit {
	if split == task.Test {
		return SplitTest
	}
	return SplitTrain
}

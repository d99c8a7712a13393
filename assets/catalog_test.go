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

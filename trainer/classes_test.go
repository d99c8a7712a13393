package trainer

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOneClassRefused: data whose samples are all of one class is refused
// by every loader with the same message, naming the file and the class.
func TestOneClassRefused(t *testing.T) {
	dir := t.TempDir()
	gray := pngBytes(t, grayRamp(2, 2))
	folder := filepath.Join(dir, "folder")
	writeFile(t, filepath.Join(folder, "cat", "a.png"), gray)
	writeFile(t, filepath.Join(folder, "cat", "b.png"), gray)
	images := writeFile(t, filepath.Join(dir, "img.idx"), idxBytes(idxU8, []int{3, 2, 2}, make([]byte, 12)))
	labels := writeFile(t, filepath.Join(dir, "lbl.idx"), idxBytes(idxU8, []int{3}, []byte{200, 200, 200}))
	csvPath := writeFile(t, filepath.Join(dir, "one.csv"), []byte("a,label\n1,cat\n2,cat\n"))
	gzPath := writeFile(t, filepath.Join(dir, "one.csv.gz"), gzipBytes(t, []byte("a,label\n1,cat\n2,cat\n")))

	const gist = ": fine-tuning a classifier needs at least two classes"
	for _, tc := range []struct {
		name, file, class string
		load              func() (*Dataset, error)
	}{
		{"csv", csvPath, "cat", func() (*Dataset, error) { return LoadCSV(csvPath, LoadOptions{}) }},
		{"csv.gz", gzPath, "cat", func() (*Dataset, error) { return LoadCSV(gzPath, LoadOptions{}) }},
		{"idx", labels, "200", func() (*Dataset, error) { return LoadIDX(images, labels, LoadOptions{}) }},
		{"image folder", folder, "cat", func() (*Dataset, error) { return LoadImageFolder(folder, []int{1, 2, 2}, LoadOptions{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := tc.load()
			want := tc.file + `: every sample is of class "` + tc.class + `"` + gist
			if err == nil || err.Error() != want || !errors.Is(err, ErrTooFewClasses) {
				t.Fatalf("got %v, %v; want the error %q", ds, err, want)
			}
		})
	}

	// A class list from the caller (a model's head, for prediction) may
	// have one class present.
	ds, err := LoadCSV(csvPath, LoadOptions{Classes: []string{"cat", "dog"}})
	if err != nil || ds.Len() != 2 {
		t.Errorf("with given classes: %v, %v", ds, err)
	}
	// Subsampling can leave one class; CheckClasses says so alike.
	d := &Dataset{Name: "d", Shape: []int{1}, X: []float32{1, 2}, Y: []int{1, 1}, Classes: []string{"a", "b"}}
	if err := d.CheckClasses(); err == nil || err.Error() != `dataset "d": every sample is of class "b"`+gist {
		t.Errorf("CheckClasses: %v", err)
	}
}

// TestLoadIDXClassesPresent: without a class list, the classes of an IDX
// labels file are the label values present, in numeric order.
func TestLoadIDXClassesPresent(t *testing.T) {
	dir := t.TempDir()
	images := writeFile(t, filepath.Join(dir, "img.idx"), idxBytes(idxU8, []int{4, 1, 1}, []byte{1, 2, 3, 4}))
	labels := writeFile(t, filepath.Join(dir, "lbl.idx"), idxBytes(idxI32, []int{4}, be32(200, 5, 7, 5)))
	ds, err := LoadIDX(images, labels, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"5", "7", "200"}; !slices.Equal(ds.Classes, want) {
		t.Errorf("classes %q, want %q", ds.Classes, want)
	}
	if want := []int{2, 0, 1, 0}; !slices.Equal(ds.Y, want) {
		t.Errorf("labels %v, want %v", ds.Y, want)
	}

	// More distinct labels than classes allowed: refused at the first one
	// over, with its offset.
	n := maxIDXClasses + 1
	vals := make([]int32, n)
	for i := range vals {
		vals[i] = int32(i)
	}
	images = writeFile(t, filepath.Join(dir, "many-img.idx"), idxBytes(idxU8, []int{n, 1}, make([]byte, n)))
	labels = writeFile(t, filepath.Join(dir, "many-lbl.idx"), idxBytes(idxI32, []int{n}, be32(vals...)))
	_, err = LoadIDX(images, labels, LoadOptions{})
	if want := "many-lbl.idx: byte 262152: label 65536 of sample 65536 is the 65537-th distinct label"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("many labels: %v, want %q", err, want)
	}
}

// TestClassNamesClash: class names that print alike on a terminal, or as
// nothing, are refused wherever classes come from: CSV labels, image
// folders, a class list given to a loader, a config and a new head.
func TestClassNamesClash(t *testing.T) {
	dir := t.TempDir()
	gray := pngBytes(t, grayRamp(2, 2))
	folder := filepath.Join(dir, "folder")
	writeFile(t, filepath.Join(folder, "A", "a.png"), gray)
	writeFile(t, filepath.Join(folder, "\x1b[1mA", "b.png"), gray)
	blank := filepath.Join(dir, "blank")
	writeFile(t, filepath.Join(blank, "A", "a.png"), gray)
	writeFile(t, filepath.Join(blank, "\x1b[31m", "b.png"), gray)
	images := writeFile(t, filepath.Join(dir, "img.idx"), idxBytes(idxU8, []int{2, 1, 1}, []byte{1, 2}))
	labels := writeFile(t, filepath.Join(dir, "lbl.idx"), idxBytes(idxU8, []int{2}, []byte{0, 1}))

	const clash = `class names cannot be told apart once printed: classes "A" and "\x1b[1mA" both print as "A"; rename one`
	// Loaders that sort the names byte-wise put the escape first.
	const sorted = `class names cannot be told apart once printed: classes "\x1b[1mA" and "A" both print as "A"; rename one`
	const nothing = `class names cannot be told apart once printed: class "\x1b[31m" prints as nothing; rename it`
	m := mustNew[float32](t, mlpConfig(8), 1)
	for _, tc := range []struct {
		name, want string
		load       func() error
	}{
		{"csv labels", "t.csv: " + sorted, func() error {
			_, err := ReadCSV(strings.NewReader("a,label\n1,A\n2,\x1b[1mA\n"), "t.csv", LoadOptions{})
			return err
		}},
		{"csv label only an escape", "t.csv: " + nothing, func() error {
			_, err := ReadCSV(strings.NewReader("a,label\n1,A\n2,\x1b[31m\n"), "t.csv", LoadOptions{})
			return err
		}},
		{"image folders", folder + ": " + sorted, func() error {
			_, err := LoadImageFolder(folder, []int{1, 2, 2}, LoadOptions{})
			return err
		}},
		{"image folder only an escape", blank + ": " + nothing, func() error {
			_, err := LoadImageFolder(blank, []int{1, 2, 2}, LoadOptions{})
			return err
		}},
		{"given classes", `dataset "img.idx": ` + clash, func() error {
			_, err := LoadIDX(images, labels, LoadOptions{Classes: []string{"A", "\x1b[1mA"}})
			return err
		}},
		{"config", "config: " + clash, func() error {
			cfg := mlpConfig(8)
			cfg.Classes = []string{"A", "\x1b[1mA", "B"}
			return cfg.Validate()
		}},
		{"new head", "replace head: " + clash, func() error {
			return m.ReplaceHead([]string{"A", "\x1b[1mA"}, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrClassNames) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

package trainer

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the dataset parsers, seeded with the small real files in
// testdata/data. Those files, and the seed corpus in testdata/fuzz, are
// written by TestDataFixtures with -update-data; the flag has its own name
// so it cannot clash with golden-file flags elsewhere in the package.
var updateData = flag.Bool("update-data", false, "rewrite testdata/data and the fuzz seed corpus")

const dataDir = "testdata/data"

// dataFixtures returns the fixture files by name. The IDX pair is three
// 2×2 u8 images labelled 0, 1, 1.
func dataFixtures(t testing.TB) map[string][]byte {
	images := idxBytes(idxU8, []int{3, 2, 2}, []byte{0, 64, 128, 255, 1, 2, 3, 4, 9, 8, 7, 6})
	labels := idxBytes(idxU8, []int{3}, []byte{0, 1, 1})
	csv := []byte("petal_length,petal_width,label\n1.4,0.2,setosa\n4.7,1.4,versicolor\n6.0,2.5,virginica\n1.3,0.2,setosa\n")
	return map[string][]byte{
		"tiny-images.idx":        images,
		"tiny-labels.idx":        labels,
		"tiny-images.idx.gz":     gzipBytes(t, images),
		"tiny-labels.idx.gz":     gzipBytes(t, labels),
		"tiny-f32.idx":           idxBytes(idxF32, []int{2, 2}, bef32(0.5, -1, 3, 1e-3)),
		"bad-truncated.idx":      images[:len(images)-3],
		"bad-trailing.idx":       append(slices.Clone(labels), 0),
		"bad-type.idx":           idxBytes(0x07, []int{1}, []byte{0}),
		"tiny.csv":               csv,
		"tiny.csv.gz":            gzipBytes(t, csv),
		"bad-quote.csv":          []byte("a,label\n1,\"x\n"),
		"bad-number.csv":         []byte("a,b,label\n1,2,x\n3,NaN,y\n"),
		"bad-fields.csv":         []byte("a,b,label\n1,2,x\n3,y\n"),
		"bad-duplicate-name.csv": []byte("a,a,label\n1,2,x\n"),
	}
}

func TestDataFixtures(t *testing.T) {
	want := dataFixtures(t)
	if *updateData {
		for name, b := range want {
			writeFile(t, filepath.Join(dataDir, name), b)
			target := "FuzzReadCSV"
			if strings.Contains(name, ".idx") {
				target = "FuzzReadIDX"
			}
			corpus := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			writeFile(t, filepath.Join("testdata", "fuzz", target, "seed-"+name), []byte(corpus))
		}
	}

	ds, err := LoadIDX(filepath.Join(dataDir, "tiny-images.idx.gz"), filepath.Join(dataDir, "tiny-labels.idx.gz"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Shape, []int{1, 2, 2}) || !slices.Equal(ds.Y, []int{0, 1, 1}) || ds.X[3] != 1 {
		t.Errorf("tiny IDX: shape %v labels %v pixel %v", ds.Shape, ds.Y, ds.X[3])
	}
	ds, err = LoadCSV(filepath.Join(dataDir, "tiny.csv.gz"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.ClassCounts(); !slices.Equal(got, []int{2, 1, 1}) {
		t.Errorf("tiny CSV: class counts %v, want [2 1 1]", got)
	}
	for name := range want {
		if !strings.HasPrefix(name, "bad-") {
			continue
		}
		path := filepath.Join(dataDir, name)
		if strings.HasSuffix(name, ".csv") {
			_, err = LoadCSV(path, LoadOptions{})
		} else {
			_, _, err = ReadIDX(bytes.NewReader(readFixture(t, path)))
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addFixtures seeds f with the fixture files whose names contain ext.
func addFixtures(f *testing.F, ext string) {
	files, err := filepath.Glob(filepath.Join(dataDir, "*"+ext+"*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no %s fixtures in %s: %v", ext, dataDir, err)
	}
	for _, p := range files {
		f.Add(readFixture(f, p))
	}
}

func FuzzReadIDX(f *testing.F) {
	addFixtures(f, ".idx")
	f.Fuzz(func(t *testing.T, in []byte) {
		shape, data, err := ReadIDX(bytes.NewReader(in))
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) || de.Offset < 0 {
				t.Fatalf("error %v has no byte offset", err)
			}
			if !de.Decompressed && de.Offset > int64(len(in)) {
				t.Fatalf("error %v points past the %d-byte input", err, len(in))
			}
			return
		}
		if len(shape) == 0 || len(shape) > maxIDXDims {
			t.Fatalf("shape %v", shape)
		}
		if numel(shape) != len(data) {
			t.Fatalf("shape %v holds %d values, data has %d", shape, numel(shape), len(data))
		}
		if !allFinite(data) {
			t.Fatalf("non-finite value in %v", data)
		}
	})
}

func FuzzReadCSV(f *testing.F) {
	addFixtures(f, ".csv")
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := ReadCSV(bytes.NewReader(in), "fuzz.csv", LoadOptions{MaxBytes: 1 << 20})
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "fuzz.csv:") {
				t.Fatalf("error %q does not locate itself in fuzz.csv", err)
			}
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
		if len(ds.Shape) != 1 || ds.Len() == 0 || len(ds.X) != ds.Len()*ds.Shape[0] {
			t.Fatalf("shape %v, %d samples, %d values", ds.Shape, ds.Len(), len(ds.X))
		}
		for i, v := range ds.X {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("value %d is %v", i, v)
			}
		}
		if !slices.IsSorted(ds.Classes) {
			t.Fatalf("classes %q not sorted", ds.Classes)
		}
		for _, c := range ds.ClassCounts() {
			if c == 0 {
				t.Fatalf("a class with no samples in %q", ds.Classes)
			}
		}
		if err := ds.CheckClasses(); err != nil {
			t.Fatalf("a loaded dataset fails CheckClasses: %v", err)
		}
		// Validate checked that the names print apart.
		if cap(ds.X)*4+cap(ds.Y)*8 > 1<<20 {
			t.Fatalf("the table holds %d bytes, over the 1 MiB budget", cap(ds.X)*4+cap(ds.Y)*8)
		}
		for _, c := range ds.Classes {
			if !utf8.ValidString(c) {
				t.Fatalf("class %q is not valid UTF-8", c)
			}
		}
		// A smaller budget refuses the file as too large or reads the
		// same table: following records and chunking rows change nothing
		// of what is read.
		small, err := ReadCSV(bytes.NewReader(in), "fuzz.csv", LoadOptions{MaxBytes: 4 << 10})
		switch {
		case err != nil && !errors.Is(err, ErrTooLarge):
			t.Fatalf("under a 4 KiB budget: %v, want it too large or read", err)
		case err == nil && (!slices.Equal(small.X, ds.X) || !slices.Equal(small.Y, ds.Y) || !slices.Equal(small.Classes, ds.Classes)):
			t.Fatal("under a 4 KiB budget: another table")
		}
	})
}

// FuzzLoadIDXLabels feeds LoadIDX a labels file (images are made to match
// its count, one value each) with no class list: the classes are the label
// values present, numerically sorted, every one with samples, at least two.
func FuzzLoadIDXLabels(f *testing.F) {
	f.Add(idxBytes(idxU8, []int{3}, []byte{0, 1, 1}))
	f.Add(idxBytes(idxI32, []int{4}, be32(200, 5, 7, 5)))
	f.Add(idxBytes(idxI16, []int{3, 1}, []byte{0, 9, 0, 9, 1, 0}))
	f.Add(idxBytes(idxU8, []int{2}, []byte{200, 200}))
	f.Add(idxBytes(idxI8, []int{2}, []byte{0xff, 1}))
	f.Fuzz(func(t *testing.T, labels []byte) {
		n := 1
		if len(labels) >= 8 && labels[3] >= 1 {
			n = int(labels[4])<<24 | int(labels[5])<<16 | int(labels[6])<<8 | int(labels[7])
		}
		if n <= 0 || n > 1<<12 {
			return
		}
		dir := t.TempDir()
		images := writeFile(t, filepath.Join(dir, "img.idx"), idxBytes(idxU8, []int{n, 1}, make([]byte, n)))
		lp := writeFile(t, filepath.Join(dir, "lbl.idx"), labels)
		ds, err := LoadIDX(images, lp, LoadOptions{MaxBytes: 1 << 20})
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a DataError", err)
			}
			return
		}
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := ds.CheckClasses(); err != nil {
			t.Fatal(err)
		}
		prev := int64(-1)
		for _, c := range ds.Classes {
			v, err := strconv.ParseInt(c, 10, 64)
			if err != nil || v <= prev {
				t.Fatalf("classes %q are not increasing label values", ds.Classes)
			}
			prev = v
		}
		for i, c := range ds.ClassCounts() {
			if c == 0 {
				t.Fatalf("class %q has no samples", ds.Classes[i])
			}
		}
	})
}

// FuzzReadIDXRows: picking rows as the file streams past accepts and
// refuses what reading the whole file does, and the rows it hands back
// are those of the whole file.
func FuzzReadIDXRows(f *testing.F) {
	addFixtures(f, ".idx")
	f.Fuzz(func(t *testing.T, in []byte) {
		shape, data, err := ReadIDXBytes(bytes.NewReader(in))
		var rows []int
		if err == nil {
			// Every other row of the first 64: a header may claim
			// millions of empty rows.
			for i := 0; i < min(shape[0], 64); i += 2 {
				rows = append(rows, i)
			}
		}
		got := map[int][]byte{}
		shape2, err2 := ReadIDXRows(bytes.NewReader(in), rows, func(i int, row []byte) { got[i] = bytes.Clone(row) })
		if (err == nil) != (err2 == nil) {
			t.Fatalf("whole file: %v; rows: %v", err, err2)
		}
		if err != nil {
			var de *DataError
			if !errors.As(err2, &de) || de.Offset < 0 {
				t.Fatalf("error %v has no byte offset", err2)
			}
			return
		}
		if !slices.Equal(shape, shape2) {
			t.Fatalf("shape %v, whole file %v", shape2, shape)
		}
		if len(got) != len(rows) {
			t.Fatalf("%d rows handed back, %d asked", len(got), len(rows))
		}
		size := len(data) / max(shape[0], 1)
		for _, i := range rows {
			if !bytes.Equal(got[i], data[i*size:(i+1)*size]) {
				t.Fatalf("row %d differs from the whole file's", i)
			}
		}
	})
}

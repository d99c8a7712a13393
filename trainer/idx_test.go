package trainer

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// idxBytes builds an IDX file: header for typ and shape, then data as is.
func idxBytes(typ byte, shape []int, data []byte) []byte {
	b := []byte{0, 0, typ, byte(len(shape))}
	for _, d := range shape {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func be16(v ...int16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, uint16(x))
	}
	return b
}

func be32(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func bef32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func bef64(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func TestReadIDXTypes(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want []float32
	}{
		{"u8", idxBytes(idxU8, []int{3}, []byte{0, 7, 255}), []float32{0, 7, 255}},
		{"i8", idxBytes(idxI8, []int{3}, []byte{0x80, 0xff, 5}), []float32{-128, -1, 5}},
		{"i16", idxBytes(idxI16, []int{3}, be16(-300, 0, 32767)), []float32{-300, 0, 32767}},
		{"i32", idxBytes(idxI32, []int{3}, be32(-70000, 1, 1<<24)), []float32{-70000, 1, 1 << 24}},
		{"f32", idxBytes(idxF32, []int{3}, bef32(-1.5, 0.25, 3e38)), []float32{-1.5, 0.25, 3e38}},
		{"f64", idxBytes(idxF64, []int{3}, bef64(-1.5, 0.1, 1e-50)), []float32{-1.5, 0.1, 0}},
		{"gzipped", gzipBytes(t, idxBytes(idxU8, []int{3}, []byte{1, 2, 3})), []float32{1, 2, 3}},
		{"zero dimension", idxBytes(idxU8, []int{0, 5}, nil), []float32{}},
	} {
		shape, data, err := ReadIDX(bytes.NewReader(tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if numel(shape) != len(data) || !slices.Equal(data, tc.want) {
			t.Errorf("%s: shape %v data %v, want %v", tc.name, shape, data, tc.want)
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	u8 := idxBytes(idxU8, []int{2, 2}, []byte{1, 2, 3, 4})
	for _, tc := range []struct {
		name string
		file []byte
		want string // the location and the gist
	}{
		{"empty", nil, "byte 0: truncated header"},
		{"short magic", []byte{0, 0}, "byte 2: truncated header"},
		{"bad magic", []byte{0x50, 0x4b, 3, 4, 0, 0, 0, 0}, "byte 0: bad magic number 50 4b 03 04"},
		{"unsupported type", idxBytes(0x0a, []int{1}, []byte{0}), "byte 2: unsupported element type 0x0a"},
		{"no dimensions", []byte{0, 0, 8, 0}, "byte 3: 0 dimensions"},
		{"too many dimensions", []byte{0, 0, 8, 9}, "byte 3: 9 dimensions"},
		{"truncated dimensions", []byte{0, 0, 8, 2, 0, 0, 0, 1, 0, 0}, "byte 10: truncated header"},
		{"truncated data", u8[:len(u8)-1], "byte 15: truncated data"},
		{"trailing data", append(slices.Clone(u8), 9, 9), "byte 16: trailing data"},
		{"absurd size", idxBytes(idxU8, []int{0xffffffff, 0xffffffff, 0xffffffff}, nil), "byte 4: shape [4294967295 4294967295 4294967295] is too large"},
		{"nan", idxBytes(idxF32, []int{2}, bef32(1, float32(math.NaN()))), "byte 12: element 1 is NaN"},
		{"f64 overflows float32", idxBytes(idxF64, []int{1}, bef64(1e300)), "byte 8: element 0 is +Inf"},
		{"gzip truncated", gzipBytes(t, u8)[:20], "(decompressed): truncated"},
		{"gzip trailing", gzipBytes(t, append(slices.Clone(u8), 0)), "byte 16 (decompressed): trailing data"},
		{"gzip bad checksum", func() []byte {
			b := gzipBytes(t, u8)
			b[len(b)-6] ^= 0xff // the CRC-32 in the trailer
			return b
		}(), "byte 16 (decompressed): after data: gzip: invalid checksum"},
	} {
		_, _, err := ReadIDX(bytes.NewReader(tc.file))
		var de *DataError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v, want a *DataError", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// A header that claims 4 GiB of data under the cap must not allocate it
// before the data comes.
func TestReadIDXLyingHeader(t *testing.T) {
	file := idxBytes(idxU8, []int{1 << 16, 1 << 14}, []byte{1, 2, 3})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readIDX(bytes.NewReader(file), "x", &budget{limit: 8 << 30}, 4)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("no error")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*idxChunk {
		t.Errorf("%d bytes allocated for a 3-byte body, want at most %d", got, 4*idxChunk)
	}
}

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	// Three 2×3 images; pixel value 10·sample + position.
	var pix []byte
	for i := range 3 {
		for j := range 6 {
			pix = append(pix, byte(10*i+j))
		}
	}
	images := idxBytes(idxU8, []int{3, 2, 3}, pix)
	labels := idxBytes(idxU8, []int{3}, []byte{2, 0, 2})
	for _, gz := range []bool{false, true} {
		im, lb := images, labels
		ext := ""
		if gz {
			im, lb, ext = gzipBytes(t, im), gzipBytes(t, lb), ".gz"
		}
		ip := writeFile(t, filepath.Join(dir, "img.idx"+ext), im)
		lp := writeFile(t, filepath.Join(dir, "lbl.idx"+ext), lb)
		ds, err := LoadIDX(ip, lp, LoadOptions{})
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if !slices.Equal(ds.Shape, []int{1, 2, 3}) || ds.Len() != 3 {
			t.Errorf("gzip %v: shape %v, %d samples", gz, ds.Shape, ds.Len())
		}
		if got, want := ds.Sample(2)[4], float32(24)/255; got != want {
			t.Errorf("gzip %v: pixel %v, want %v (u8 scaled to [0,1])", gz, got, want)
		}
		// The classes are the labels present, not 0 to the largest.
		if !slices.Equal(ds.Classes, []string{"0", "2"}) || !slices.Equal(ds.Y, []int{1, 0, 1}) {
			t.Errorf("gzip %v: classes %v labels %v", gz, ds.Classes, ds.Y)
		}
	}

	// Given classes name the labels.
	ip, lp := filepath.Join(dir, "img.idx"), filepath.Join(dir, "lbl.idx")
	ds, err := LoadIDX(ip, lp, LoadOptions{Classes: []string{"x", "y", "z", "w"}})
	if err != nil || !slices.Equal(ds.Classes, []string{"x", "y", "z", "w"}) {
		t.Errorf("given classes: %v, %v", ds, err)
	}

	// Samples of shape [features] stay flat; i16 values are not scaled.
	tp := writeFile(t, filepath.Join(dir, "tab.idx"), idxBytes(idxI16, []int{3, 2}, be16(1, 2, 3, 4, 5, -6)))
	ds, err = LoadIDX(tp, lp, LoadOptions{})
	if err != nil || !slices.Equal(ds.Shape, []int{2}) || ds.X[5] != -6 {
		t.Errorf("table: %v, %v", ds, err)
	}
}

func TestLoadIDXErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) string { return writeFile(t, filepath.Join(dir, name), b) }
	images := file("img.idx", idxBytes(idxU8, []int{3, 2, 2}, make([]byte, 12)))
	labels := file("lbl.idx", idxBytes(idxU8, []int{3}, []byte{0, 1, 1}))
	for _, tc := range []struct {
		name           string
		images, labels string
		opts           LoadOptions
		want           string
	}{
		{"count mismatch", images, file("short.idx", idxBytes(idxU8, []int{2}, []byte{0, 1})), LoadOptions{},
			"short.idx: byte 4: 2 labels for the 3 samples of " + images},
		{"label out of given classes", images, labels, LoadOptions{Classes: []string{"a"}},
			"lbl.idx: byte 9: label 1 of sample 1 is out of range for 1 classes"},
		{"negative label", images, file("neg.idx", idxBytes(idxI8, []int{3}, []byte{0, 0xff, 0})), LoadOptions{},
			"neg.idx: byte 9: label -1 of sample 1"},
		{"float labels", images, file("flt.idx", idxBytes(idxF32, []int{3}, bef32(0, 1, 1))), LoadOptions{},
			"flt.idx: byte 2: labels have type f32"},
		{"labels not a vector", images, file("mat.idx", idxBytes(idxU8, []int{3, 2}, make([]byte, 6))), LoadOptions{},
			"mat.idx: byte 3: labels have shape [3 2]"},
		{"images are labels", labels, labels, LoadOptions{},
			"lbl.idx: byte 3: shape [3] has no sample dimensions"},
		{"no samples", file("none.idx", idxBytes(idxU8, []int{0, 2}, nil)), labels, LoadOptions{},
			"none.idx: byte 4: no samples"},
		{"file over the cap", images, labels, LoadOptions{MaxBytes: 10},
			"img.idx: file of 28 B is too large: over the 10 B limit"},
		{"shape over the cap", images, labels, LoadOptions{MaxBytes: 40},
			"img.idx: byte 12: shape [3 2 2] is too large"},
		{"truncated images", file("trunc.idx", idxBytes(idxU8, []int{3, 2, 2}, make([]byte, 11))), labels, LoadOptions{},
			"trunc.idx: byte 27: truncated data: shape [3 2 2] of u8 needs 12 bytes of data, found 11"},
	} {
		_, err := LoadIDX(tc.images, tc.labels, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// TestReadIDXRows: the rows asked for are those ReadIDXBytes reads, in
// order, gzipped or not; rows out of order or out of range, a truncated
// file and trailing bytes are refused.
func TestReadIDXRows(t *testing.T) {
	var data []byte
	for i := range 5 * 6 {
		data = append(data, byte(7*i))
	}
	file := idxBytes(idxU8, []int{5, 2, 3}, data)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(file)
	zw.Close()
	for _, f := range [][]byte{file, gz.Bytes()} {
		for _, rows := range [][]int{{}, {0}, {1, 3}, {4}, {0, 1, 2, 3, 4}} {
			var got []byte
			var at []int
			shape, err := ReadIDXRows(bytes.NewReader(f), rows, func(i int, row []byte) {
				at = append(at, i)
				got = append(got, row...)
			})
			if err != nil {
				t.Fatalf("rows %v: %v", rows, err)
			}
			var want []byte
			for _, i := range rows {
				want = append(want, data[i*6:(i+1)*6]...)
			}
			if !slices.Equal(shape, []int{5, 2, 3}) || !slices.Equal(at, rows) || !bytes.Equal(got, want) {
				t.Errorf("rows %v: shape %v, rows %v, bytes %v; want %v", rows, shape, at, got, want)
			}
		}
	}
	for _, tc := range []struct {
		name string
		file []byte
		rows []int
		want string
	}{
		{"out of order", file, []int{3, 1}, "out of order"},
		{"repeated", file, []int{2, 2}, "out of order"},
		{"out of range", file, []int{5}, "rows 5 to 5 asked of a file of 5"},
		{"truncated", file[:len(file)-1], []int{0}, "truncated data"},
		{"trailing", append(slices.Clone(file), 0), []int{0}, "trailing data"},
		{"not bytes", idxBytes(idxI16, []int{1, 1}, []byte{0, 1}), nil, "want u8"},
	} {
		_, err := ReadIDXRows(bytes.NewReader(tc.file), tc.rows, func(int, []byte) {})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

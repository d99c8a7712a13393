package trainer

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	const text = "\uFEFFx1, label ,x2\n" +
		"1,cat,2\n" +
		"\n" + // blank lines are skipped
		" 3.5 ,dog, -4e-1\n" +
		"5,\"cat\",6\n" +
		"7,ant,0x1p-2\n"
	for _, gz := range []bool{false, true} {
		in := []byte(text)
		if gz {
			in = gzipBytes(t, in)
		}
		ds, err := ReadCSV(bytes.NewReader(in), "t.csv", LoadOptions{})
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if !slices.Equal(ds.Shape, []int{2}) {
			t.Errorf("shape %v, want [2]", ds.Shape)
		}
		if want := []float32{1, 2, 3.5, -0.4, 5, 6, 7, 0.25}; !slices.Equal(ds.X, want) {
			t.Errorf("X %v, want %v", ds.X, want)
		}
		if want := []string{"ant", "cat", "dog"}; !slices.Equal(ds.Classes, want) {
			t.Errorf("classes %v, want %v (sorted)", ds.Classes, want)
		}
		if want := []int{1, 2, 1, 0}; !slices.Equal(ds.Y, want) {
			t.Errorf("Y %v, want %v", ds.Y, want)
		}
	}
}

func TestReadCSVLabelColumn(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		opts       LoadOptions
		x          []float32
		classes    []string
	}{
		{"class", "class,a\nb,1\nc,2\n", LoadOptions{}, []float32{1, 2}, []string{"b", "c"}},
		{"label wins over class", "class,label\n1,b\n2,a\n", LoadOptions{}, []float32{1, 2}, []string{"a", "b"}},
		{"named", "y,a,b\nq,1,2\np,3,4\n", LoadOptions{Label: "y"}, []float32{1, 2, 3, 4}, []string{"p", "q"}},
		{"given classes keep their order", "label,a\nq,1\n", LoadOptions{Classes: []string{"z", "q"}}, []float32{1}, []string{"z", "q"}},
	} {
		ds, err := ReadCSV(strings.NewReader(tc.text), "t.csv", tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(ds.X, tc.x) || !slices.Equal(ds.Classes, tc.classes) {
			t.Errorf("%s: X %v classes %v, want %v %v", tc.name, ds.X, ds.Classes, tc.x, tc.classes)
		}
		if err := ds.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestReadCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		opts       LoadOptions
		want       string // file:line:column: and the gist
	}{
		{"empty", "", LoadOptions{}, "t.csv:1: empty file"},
		{"empty header name", "a,,label\n", LoadOptions{}, "t.csv:1:3: column 2 has an empty name"},
		{"duplicate header", "a,label, a\n", LoadOptions{}, `t.csv:1:9: column 3 has the same name "a" as column 1`},
		{"no label column", "a,b\n1,2\n", LoadOptions{}, `t.csv:1: no label column: want "label" or "class", the header has ["a" "b"]`},
		{"named label missing", "a,label\n", LoadOptions{Label: "y"}, `t.csv:1: no label column: want "y"`},
		{"only a label", "label\nx\n", LoadOptions{}, "t.csv:1: no feature columns"},
		{"no rows", "a,label\n", LoadOptions{}, "t.csv:1: no data rows"},
		{"bare quote", "a,label\n1,x\n2,b\"c\n", LoadOptions{}, `t.csv:3:4: bare " in non-quoted-field`},
		{"unterminated quote", "a,label\n1,\"x\n", LoadOptions{}, `t.csv:2:6: extraneous or missing " in quoted-field`},
		{"too few fields", "a,b,label\n1,2,x\n3,y\n", LoadOptions{}, "t.csv:3:3: 2 fields, want 3"},
		{"too many fields", "a,label\n1,x,9,9\n", LoadOptions{}, "t.csv:2:5: 4 fields, want 2"},
		{"not a number", "a,b,label\n1,2,x\n3,four,y\n", LoadOptions{}, `t.csv:3:3: column "b": "four" is not a number`},
		{"nan", "a,label\nNaN,x\n", LoadOptions{}, `t.csv:2:1: column "a": "NaN" is not finite`},
		{"inf", "a,label\n1,x\n-Inf,x\n", LoadOptions{}, `t.csv:3:1: column "a": "-Inf" is not finite`},
		{"out of float32 range", "a,label\n1e39,x\n", LoadOptions{}, `t.csv:2:1: column "a": "1e39" is out of float32 range`},
		{"empty cell", "a,b,label\n1, ,x\n", LoadOptions{}, `t.csv:2:3: column "b" is empty`},
		{"empty label", "a,label\n1,\n", LoadOptions{}, "t.csv:2:3: empty label"},
		{"unknown label", "a,label\n1,x\n2,y\n", LoadOptions{Classes: []string{"x"}}, `t.csv:3:3: label "y" is not one of the 1 classes ["x"]`},
		{"label not UTF-8", "a,label\n1,x\n2,caf\xe9\n", LoadOptions{}, `t.csv:3:3: label "caf\xe9" is not valid UTF-8`},
		{"quoted label not UTF-8 on a later line", "a,label\n1,\"x\ny\"\n2,\"\n\xff\"\n", LoadOptions{}, `t.csv:4:3: label "\xff" is not valid UTF-8`},
		{"escapes control characters", "a,label\n\x1b[2J,x\n", LoadOptions{}, `t.csv:2:1: column "a": "\x1b[2J" is not a number`},
		{"over the cap", "a,label\n1,x\n" + strings.Repeat("\n", 1200) + "2,y\n", LoadOptions{MaxBytes: 1000}, "t.csv:3: data is too large: more than the 1000 B limit"},
		{"record over the cap", "a,label\n1" + strings.Repeat(" ", 200) + ",x\n2,y\n", LoadOptions{MaxBytes: 1400},
			"t.csv:2: record is too large: its first 204 B of text would take more than is left of the 1.4 KiB limit to buffer (LoadOptions.MaxBytes)"},
		{"quoted field over the cap", "a,label\n1,\"x" + strings.Repeat("\n", 200) + "\"\n2,y\n", LoadOptions{MaxBytes: 1400},
			"t.csv:2: record is too large: its first 206 B of text would take more than is left of the 1.4 KiB limit to buffer (LoadOptions.MaxBytes)"},
		// 1 row a chunk (a sixteenth of 320 bytes is less than 2 rows),
		// counted twice: 24 bytes a row, 65 a class; the 8th row passes.
		{"decoded over the cap", "a,label\n" + strings.Repeat("1,x\n2,y\n", 5), LoadOptions{MaxBytes: 320}, "t.csv:9: decoded data is too large: it passes the 320 B limit (LoadOptions.MaxBytes)"},
		{"named limit", "a,label\n" + strings.Repeat("1,x\n2,y\n", 5), LoadOptions{MaxBytes: 320, MaxBytesName: "--max-data-bytes"},
			"t.csv:9: decoded data is too large: it passes the 320 B limit (--max-data-bytes)"},
	} {
		_, err := ReadCSV(strings.NewReader(tc.text), "t.csv", tc.opts)
		var de *DataError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v, want a *DataError", tc.name, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to start %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadCSVTooLarge(t *testing.T) {
	dir := t.TempDir()
	body := "a,label\n" + strings.Repeat("0,x\n0,y\n", 500) // 4008 bytes

	// A plain file over the cap is refused from its size, before reading.
	plain := writeFile(t, filepath.Join(dir, "big.csv"), []byte(body))
	_, err := LoadCSV(plain, LoadOptions{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.csv: file of 3.9 KiB is too large") {
		t.Errorf("plain: error %v, want the file refused", err)
	}

	// A gzipped file is small on disk; reading stops at the cap.
	gz := writeFile(t, filepath.Join(dir, "big.csv.gz"), gzipBytes(t, []byte(body)))
	_, err = LoadCSV(gz, LoadOptions{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.csv.gz:") {
		t.Errorf("gzip: error %v, want reading stopped at the cap", err)
	}

	// 1000 rows of one feature and a label take 12 kB decoded, and twice
	// that while the chunks they arrive in are copied into one table.
	ds, err := LoadCSV(gz, LoadOptions{MaxBytes: 32 << 10})
	if err != nil {
		t.Fatalf("under the cap: %v", err)
	}
	if ds.Len() != 1000 || ds.Name != "big.csv.gz" {
		t.Errorf("under the cap: %v samples, name %q", ds.Len(), ds.Name)
	}
}

package assets

import (
	"encoding/binary"
	"encoding/csv"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// maxDataBytes bounds the compressed size of data/, leaving room for the zoo
// under the 20 MB the repository allows for assets/.
const maxDataBytes = 15 << 20

// readAll decompresses an embedded file.
func readAll(t *testing.T, p string) []byte {
	t.Helper()
	r, err := OpenGzip(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

// labels reads one split and returns the class index of every sample,
// checking the file format against the catalogue on the way.
func labels(t *testing.T, d DatasetInfo, s Split) []int {
	t.Helper()
	switch d.Kind {
	case Images:
		if len(s.Files) != 2 {
			t.Fatalf("%s/%s: %d files, want images and labels", d.Name, s.Name, len(s.Files))
		}
		img := readAll(t, s.Files[0])
		if len(img) < 16 || binary.BigEndian.Uint32(img) != 0x803 {
			t.Fatalf("%s: not IDX3 u8 (magic)", s.Files[0])
		}
		n := int(binary.BigEndian.Uint32(img[4:]))
		rows, cols := int(binary.BigEndian.Uint32(img[8:])), int(binary.BigEndian.Uint32(img[12:]))
		if n != s.Count || !slices.Equal([]int{rows, cols}, d.Shape) || len(img) != 16+n*rows*cols {
			t.Fatalf("%s: header %d×%d×%d, %d bytes; catalogue says %d of %v", s.Files[0], n, rows, cols, len(img), s.Count, d.Shape)
		}
		lab := readAll(t, s.Files[1])
		if len(lab) < 8 || binary.BigEndian.Uint32(lab) != 0x801 {
			t.Fatalf("%s: not IDX1 u8 (magic)", s.Files[1])
		}
		if m := int(binary.BigEndian.Uint32(lab[4:])); m != n || len(lab) != 8+n {
			t.Fatalf("%s: %d labels (%d bytes) for %d images", s.Files[1], m, len(lab), n)
		}
		out := make([]int, n)
		for i, l := range lab[8:] {
			if int(l) >= len(d.Classes) {
				t.Fatalf("%s: label %d at %d", s.Files[1], l, i)
			}
			out[i] = int(l)
		}
		return out
	case Table:
		if len(s.Files) != 1 {
			t.Fatalf("%s/%s: %d files, want one CSV", d.Name, s.Name, len(s.Files))
		}
		r := csv.NewReader(strings.NewReader(string(readAll(t, s.Files[0]))))
		header, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if want := append(slices.Clone(d.Features), "label"); !slices.Equal(header, want) {
			t.Fatalf("%s: header %q, want %q", s.Files[0], header, want)
		}
		if len(d.Features) != d.Shape[0] {
			t.Fatalf("%s: %d features, shape %v", d.Name, len(d.Features), d.Shape)
		}
		var out []int
		for line := 2; ; line++ {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, f := range rec[:len(rec)-1] {
				v, err := strconv.Atoi(f)
				if err != nil || v < 0 || v > d.Range {
					t.Fatalf("%s:%d:%d: %q is not an integer in 0..%d", s.Files[0], line, k+1, f, d.Range)
				}
			}
			c := slices.Index(d.Classes, rec[len(rec)-1])
			if c < 0 {
				t.Fatalf("%s:%d: label %q is not a class", s.Files[0], line, rec[len(rec)-1])
			}
			out = append(out, c)
		}
		if len(out) != s.Count {
			t.Fatalf("%s: %d rows, catalogue says %d", s.Files[0], len(out), s.Count)
		}
		return out
	}
	t.Fatalf("%s: unknown kind %q", d.Name, d.Kind)
	return nil
}

func TestDatasetsMatchTheirFiles(t *testing.T) {
	for _, d := range Datasets() {
		t.Run(d.Name, func(t *testing.T) {
			for _, s := range d.Splits {
				got := make([]int, len(d.Classes))
				for _, l := range labels(t, d, s) {
					got[l]++
				}
				if !slices.Equal(got, s.ClassCounts) {
					t.Errorf("%s: class counts %v, catalogue says %v", s.Name, got, s.ClassCounts)
				}
			}
		})
	}
}

func TestTasksMatchTheirDatasets(t *testing.T) {
	seen := map[string]bool{}
	for _, task := range Tasks() {
		if seen[task.Name] {
			t.Errorf("task %s listed twice", task.Name)
		}
		seen[task.Name] = true
		d, ok := Dataset(task.Dataset)
		if !ok {
			t.Errorf("%s: unknown dataset %q", task.Name, task.Dataset)
			continue
		}
		count := func(split string) int {
			if split == "" {
				return 0
			}
			s, ok := d.Split(split)
			if !ok {
				t.Errorf("%s: %s has no split %q", task.Name, d.Name, split)
				return 0
			}
			n := 0
			for _, c := range task.Classes {
				i := slices.Index(d.Classes, c)
				if i < 0 {
					t.Errorf("%s: %q is not a class of %s", task.Name, c, d.Name)
					continue
				}
				n += s.ClassCounts[i]
			}
			return n
		}
		if n := count(task.Train); n != task.TrainCount {
			t.Errorf("%s: %d training samples, catalogue says %d", task.Name, n, task.TrainCount)
		}
		if n := count(task.Test); n != task.TestCount {
			t.Errorf("%s: %d test samples, catalogue says %d", task.Name, n, task.TestCount)
		}
		if l, ok := task.Label(task.Classes[len(task.Classes)-1]); !ok || l != len(task.Classes)-1 {
			t.Errorf("%s: Label of the last class = %d, %v", task.Name, l, ok)
		}
	}
	for _, want := range []string{"digits-0to4", "digits-5to9", "letters-a-m", "letters-n-z", "mnist8", "uci-digits"} {
		if _, ok := TaskByName(want); !ok {
			t.Errorf("zoo task %s missing", want)
		}
	}
}

// thousands formats 30000 as "30,000", as the cards write counts.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func TestEveryDataFileHasACardWithALicence(t *testing.T) {
	owner := map[string]DatasetInfo{}
	for _, d := range Datasets() {
		if _, ok := Dataset(d.Name); !ok {
			t.Errorf("Dataset(%q) not found", d.Name)
		}
		card, err := fs.ReadFile(Data(), d.Card)
		if err != nil {
			t.Errorf("%s: card: %v", d.Name, err)
			continue
		}
		text := string(card)
		if d.Licence == "" || !strings.Contains(text, "**Licence: "+d.Licence+"**") {
			t.Errorf("%s: card %s does not state the licence %q as **Licence: %s**", d.Name, d.Card, d.Licence, d.Licence)
		}
		for _, s := range d.Splits {
			if !strings.Contains(text, thousands(s.Count)) {
				t.Errorf("%s: card does not state the %s count %s", d.Name, s.Name, thousands(s.Count))
			}
			for _, f := range s.Files {
				if !strings.Contains(text, path.Base(f)) {
					t.Errorf("%s: card does not name %s", d.Name, path.Base(f))
				}
				owner[f] = d
			}
		}
		for _, task := range Tasks() {
			if task.Dataset == d.Name && d.Name != task.Name && !strings.Contains(text, task.Name) {
				t.Errorf("%s: card does not describe task %s", d.Name, task.Name)
			}
		}
	}
	total := int64(0)
	err := fs.WalkDir(Data(), "data", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		if strings.HasSuffix(p, ".md") {
			return nil
		}
		if _, ok := owner[p]; !ok {
			t.Errorf("%s is in no catalogued dataset, so it has no card", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > maxDataBytes {
		t.Errorf("data/ holds %d bytes, over the %d budget", total, maxDataBytes)
	}
}

func TestOpenGzipRejectsPlainFiles(t *testing.T) {
	if _, err := OpenGzip("data/mnist.md"); err == nil {
		t.Fatal("OpenGzip of a markdown file succeeded")
	}
	if _, err := OpenGzip("data/missing.gz"); err == nil {
		t.Fatal("OpenGzip of a missing file succeeded")
	}
}

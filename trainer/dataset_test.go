package trainer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// toyDataset has counts[c] samples of class c, each of shape [2] holding
// its own index and its class, so any subset can be checked against the
// original.
func toyDataset(counts ...int) *Dataset {
	ds := &Dataset{Name: "toy", Shape: []int{2}}
	for c, n := range counts {
		ds.Classes = append(ds.Classes, string(rune('a'+c)))
		for range n {
			ds.X = append(ds.X, float32(len(ds.Y)), float32(c))
			ds.Y = append(ds.Y, c)
		}
	}
	return ds
}

// checkSubset checks that every sample of s is an unchanged sample of the
// toy dataset and returns their original indices.
func checkSubset(t *testing.T, s *Dataset) []int {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	var idx []int
	for i := range s.Len() {
		x := s.Sample(i)
		if int(x[1]) != s.Y[i] {
			t.Fatalf("sample %d: class value %v, label %d", i, x[1], s.Y[i])
		}
		idx = append(idx, int(x[0]))
	}
	return idx
}

func TestBatch(t *testing.T) {
	ds := toyDataset(3, 2)
	var x Tensor[float32]
	var y []int
	y = ds.Batch(&x, y, []int{4, 0})
	if !slices.Equal(x.Shape, []int{2, 2}) {
		t.Fatalf("shape %v, want [2 2]", x.Shape)
	}
	if want := []float32{4, 1, 0, 0}; !slices.Equal(x.Data, want) {
		t.Errorf("data %v, want %v", x.Data, want)
	}
	if want := []int{1, 0}; !slices.Equal(y, want) {
		t.Errorf("labels %v, want %v", y, want)
	}

	// After the first batch of the largest size, batches allocate nothing.
	idx := []int{1, 2, 3}
	y = ds.Batch(&x, y, idx)
	allocs := testing.AllocsPerRun(10, func() {
		y = ds.Batch(&x, y, idx)
		y = ds.Batch(&x, y, idx[:1])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
	if !slices.Equal(x.Shape, []int{1, 2}) || len(y) != 1 {
		t.Errorf("short batch: shape %v, %d labels", x.Shape, len(y))
	}
}

func TestBatches(t *testing.T) {
	ds := toyDataset(4, 3) // 7 samples
	for _, tc := range []struct {
		size  int
		sizes []int
	}{
		{3, []int{3, 3, 1}},
		{7, []int{7}},
		{10, []int{7}},
		{1, []int{1, 1, 1, 1, 1, 1, 1}},
	} {
		bs := ds.Batches(rand.New(rand.NewPCG(1, 1)), tc.size)
		var sizes, all []int
		for _, b := range bs {
			sizes = append(sizes, len(b))
			all = append(all, b...)
		}
		if !slices.Equal(sizes, tc.sizes) {
			t.Errorf("size %d: batch sizes %v, want %v", tc.size, sizes, tc.sizes)
		}
		slices.Sort(all)
		if want := []int{0, 1, 2, 3, 4, 5, 6}; !slices.Equal(all, want) {
			t.Errorf("size %d: indices %v, want each once", tc.size, all)
		}
	}

	if got := ds.Batches(nil, 4); !slices.Equal(got[0], []int{0, 1, 2, 3}) || !slices.Equal(got[1], []int{4, 5, 6}) {
		t.Errorf("nil rng: %v, want samples in order", got)
	}

	// Same seed, same order; the next epoch from the same rng differs.
	a := rand.New(rand.NewPCG(7, 8))
	b := rand.New(rand.NewPCG(7, 8))
	e1, e2 := ds.Batches(a, 2), ds.Batches(b, 2)
	if !slices.EqualFunc(e1, e2, slices.Equal) {
		t.Errorf("same seed gave %v and %v", e1, e2)
	}
	var differs bool
	for range 5 {
		if !slices.EqualFunc(ds.Batches(a, 7)[0], e1[0], func(x, y int) bool { return x == y }) {
			differs = true
		}
	}
	if !differs {
		t.Errorf("five more epochs all began like the first")
	}
}

func TestSplitStratified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts []int
		frac   float64
		val    []int // validation samples per class
	}{
		// round(0.2·n), at least one on each side when n ≥ 2.
		{"proportional", []int{10, 20, 50}, 0.2, []int{2, 4, 10}},
		{"rounds", []int{7, 8}, 0.25, []int{2, 2}},
		{"two keeps one each side", []int{2, 2}, 0.1, []int{1, 1}},
		{"large fraction leaves one", []int{5}, 0.95, []int{4}},
		{"single sample trains", []int{1, 4}, 0.5, []int{0, 2}},
		{"empty class", []int{0, 6}, 0.5, []int{0, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := toyDataset(tc.counts...)
			tr, va, err := ds.Split(rand.New(rand.NewPCG(3, 4)), tc.frac)
			if err != nil {
				t.Fatal(err)
			}
			if got := va.ClassCounts(); !slices.Equal(got, tc.val) {
				t.Errorf("validation counts %v, want %v", got, tc.val)
			}
			trainWant := make([]int, len(tc.counts))
			for c := range trainWant {
				trainWant[c] = tc.counts[c] - tc.val[c]
			}
			if got := tr.ClassCounts(); !slices.Equal(got, trainWant) {
				t.Errorf("training counts %v, want %v", got, trainWant)
			}
			all := append(checkSubset(t, tr), checkSubset(t, va)...)
			slices.Sort(all)
			for i, v := range all {
				if v != i {
					t.Fatalf("train ∪ validation = %v, want every sample once", all)
				}
			}
		})
	}
}

func TestSplitDeterministic(t *testing.T) {
	ds := toyDataset(30, 30)
	split := func(seed uint64) []int {
		_, va, err := ds.Split(rand.New(rand.NewPCG(seed, 0)), 0.3)
		if err != nil {
			t.Fatal(err)
		}
		return checkSubset(t, va)
	}
	if a, b := split(1), split(1); !slices.Equal(a, b) {
		t.Errorf("seed 1 gave %v, then %v", a, b)
	}
	if a, b := split(1), split(2); slices.Equal(a, b) {
		t.Errorf("seeds 1 and 2 both gave %v", a)
	}
}

func TestSplitBadFraction(t *testing.T) {
	ds := toyDataset(4)
	for _, f := range []float64{0, 1, -0.1, 1.5, math.NaN()} {
		if _, _, err := ds.Split(rand.New(rand.NewPCG(1, 1)), f); err == nil {
			t.Errorf("fraction %v: no error", f)
		}
	}
}

func TestKShot(t *testing.T) {
	ds := toyDataset(5, 3, 9)
	rng := rand.New(rand.NewPCG(5, 6))
	s, err := ds.KShot(rng, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.ClassCounts(), []int{3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	idx := checkSubset(t, s)
	if !slices.IsSorted(idx) {
		t.Errorf("indices %v not in dataset order", idx)
	}
	again, _ := ds.KShot(rand.New(rand.NewPCG(5, 6)), 3)
	if got := checkSubset(t, again); !slices.Equal(got, idx) {
		t.Errorf("same seed gave %v, then %v", idx, got)
	}

	_, err = ds.KShot(rng, 4)
	if err == nil || !strings.Contains(err.Error(), `class "b" has 3 samples`) {
		t.Errorf("4 shots: error %v, want one naming class \"b\"", err)
	}
	if _, err := ds.KShot(rng, 0); err == nil {
		t.Errorf("0 shots: no error")
	}
}

// TestSplitKShot: the split and the shots drawn in one go are those of
// Split then KShot on its training set, to the same samples, and the same
// error for too few samples.
func TestSplitKShot(t *testing.T) {
	ds := toyDataset(7, 12, 9, 20)
	for _, k := range []int{1, 3, 8} {
		rng := rand.New(rand.NewPCG(3, 4))
		tr, va, err := ds.Split(rng, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := tr.KShot(rng, k)
		gotTr, gotVa, gotErr := ds.splitKShot(rand.New(rand.NewPCG(3, 4)), 0.25, k)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%d shots: error %v, want %v", k, gotErr, wantErr)
		}
		if wantErr != nil {
			continue
		}
		for _, c := range []struct{ got, want *Dataset }{{gotTr, want}, {gotVa, va}} {
			if !slices.Equal(c.got.X, c.want.X) || !slices.Equal(c.got.Y, c.want.Y) || c.got.Name != c.want.Name || !slices.Equal(c.got.Classes, c.want.Classes) {
				t.Errorf("%d shots: %d samples %v, want %d samples %v", k, c.got.Len(), c.got.Y, c.want.Len(), c.want.Y)
			}
		}
	}
}

func TestRelabel(t *testing.T) {
	ds := toyDataset(1, 2) // classes a, b
	if err := ds.Relabel([]string{"z", "b", "a"}); err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 1, 1}; !slices.Equal(ds.Y, want) {
		t.Errorf("labels %v, want %v", ds.Y, want)
	}
	if err := ds.Relabel([]string{"a", "b"}); err == nil || !strings.Contains(err.Error(), `class "z"`) {
		t.Errorf("missing class: error %v, want one naming \"z\"", err)
	}
	if err := ds.Relabel([]string{"a", "b", "a"}); err == nil {
		t.Errorf("duplicate class: no error")
	}
	if want := []int{2, 1, 1}; !slices.Equal(ds.Y, want) {
		t.Errorf("failed relabel changed labels to %v", ds.Y)
	}
}

func TestCheckConfig(t *testing.T) {
	ds := toyDataset(1, 1)
	cfg := &Config{Name: "tab", InputShape: []int{2}, Classes: []string{"a", "b"}}
	if err := ds.CheckConfig(cfg); err != nil {
		t.Errorf("matching config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		is    error
		wants []string
	}{
		{"shape", Config{Name: "img", InputShape: []int{1, 2, 2}, Classes: []string{"a", "b"}},
			ErrShapeMismatch, []string{"[2]", "[1 2 2]", `"toy"`, `"img"`}},
		{"classes", Config{Name: "tab", InputShape: []int{2}, Classes: []string{"b", "a"}},
			ErrClassMismatch, []string{`["a" "b"]`, `["b" "a"]`}},
	} {
		err := ds.CheckConfig(&tc.cfg)
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.is)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestFitNormalization(t *testing.T) {
	// Two samples of two channels of two pixels each:
	// channel 0 holds 1, 3, 5, 7 (mean 4, population std √5), channel 1
	// holds 2 everywhere (std 0, reported as 1).
	ds := &Dataset{Shape: []int{2, 1, 2}, X: []float32{1, 3, 2, 2, 5, 7, 2, 2}, Y: []int{0, 0}, Classes: []string{"x"}}
	nz := FitNormalization(ds)
	want := Normalization{Mean: []float64{4, 2}, Std: []float64{math.Sqrt(5), 1}}
	for c := range 2 {
		// Sums of a few small integers are exact in float64; only the
		// square root rounds.
		if math.Abs(nz.Mean[c]-want.Mean[c]) > 1e-12 || math.Abs(nz.Std[c]-want.Std[c]) > 1e-12 {
			t.Errorf("channel %d: mean %v std %v, want %v %v", c, nz.Mean[c], nz.Std[c], want.Mean[c], want.Std[c])
		}
	}
	cfg := &Config{InputShape: ds.Shape, Normalize: &nz}
	if n := cfg.Normalize; len(n.Mean) != cfg.InputShape[0] {
		t.Errorf("%d means for %d channels", len(n.Mean), cfg.InputShape[0])
	}
}

func TestDataErrorFormat(t *testing.T) {
	e := errors.New("boom")
	for _, tc := range []struct {
		err  DataError
		want string
	}{
		{DataError{File: "a.csv", Line: 3, Column: 7, Offset: -1, Err: e}, "a.csv:3:7: boom"},
		{DataError{File: "a.csv", Line: 1, Offset: -1, Err: e}, "a.csv:1: boom"},
		{DataError{File: "x.idx", Offset: 16, Err: e}, "x.idx: byte 16: boom"},
		{DataError{File: "x.idx.gz", Offset: 0, Decompressed: true, Err: e}, "x.idx.gz: byte 0 (decompressed): boom"},
		{DataError{File: "img/a/1.png", Offset: -1, Err: e}, "img/a/1.png: boom"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	if got, want := quote("a\x1b[2Jb"), `"a\x1b[2Jb"`; got != want {
		t.Errorf("quote escapes: got %s, want %s", got, want)
	}
	long := strings.Repeat("é", 100)
	if got := quote(long); !strings.HasSuffix(got, `"…`) || len(got) > maxQuoted+8 {
		t.Errorf("quote of a long string: %s", got)
	}
}

func TestDefaultMaxBytes(t *testing.T) {
	if n := DefaultMaxBytes(); n != 256<<20 {
		t.Errorf("DefaultMaxBytes() = %d, want 256 MiB", n)
	}
	if got, want := RunMemoryLimit(0), RunMemoryLimit(DefaultMaxDataBytes); got != want {
		t.Errorf("RunMemoryLimit(0) = %d, want the default budget's %d", got, want)
	}
}

package trainer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"thaw/trainer/safetensors"
)

// mlpConfig is a small two-block MLP: 4 features → 8 hidden → 3 classes.
func mlpConfig(hidden int) *Config {
	return &Config{
		Name:         "io-mlp",
		Architecture: "mlp",
		InputShape:   []int{4},
		Normalize:    &Normalization{Mean: []float64{0.5}, Std: []float64{2}},
		Classes:      []string{"a", "b", "c"},
		Blocks: []BlockConfig{
			{Name: "fc1", Layers: []LayerConfig{
				{Type: "linear", Name: "features.0", InFeatures: 4, OutFeatures: hidden},
				{Type: "relu"},
			}},
			{Name: "head", Layers: []LayerConfig{
				{Type: "linear", Name: "classifier", InFeatures: hidden, OutFeatures: 3},
			}},
		},
	}
}

func mustNew[T Float](t *testing.T, cfg *Config, seed uint64) *Model[T] {
	t.Helper()
	m, err := New[T](cfg, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameBits reports whether two slices are bit-identical (NaN-safe).
func sameBits[T Float](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(float64(a[i])) != math.Float64bits(float64(b[i])) {
			return false
		}
	}
	return true
}

func TestSaveLoadModel(t *testing.T) {
	t.Run("float32", testSaveLoad[float32])
	t.Run("float64", testSaveLoad[float64])
}

// testSaveLoad saves a model, loads it back and requires bit-identical
// parameters and forward outputs.
func testSaveLoad[T Float](t *testing.T) {
	m := mustNew[T](t, mlpConfig(8), 7)
	dir := filepath.Join(t.TempDir(), "model") // SaveModel creates it
	if err := SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := LoadModel[T](dir)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Params()
	ps := got.Params()
	if len(ps) != len(want) {
		t.Fatalf("%d params, want %d", len(ps), len(want))
	}
	for i, p := range ps {
		if p.Name != want[i].Name || !p.Value.SameShape(want[i].Value) || !sameBits(p.Value.Data, want[i].Value.Data) {
			t.Errorf("param %s differs after the round trip", want[i].Name)
		}
	}
	if got.Config.Name != m.Config.Name || got.Config.Normalize.Std[0] != 2 {
		t.Errorf("config %+v, want %+v", got.Config, m.Config)
	}

	x := NewTensor[T](5, 4)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range x.Data {
		x.Data[i] = T(rng.NormFloat64())
	}
	y1 := m.Forward(x, false).Clone()
	y2 := got.Forward(x, false)
	if !sameBits(y1.Data, y2.Data) {
		t.Errorf("forward outputs differ:\n%v\n%v", y1.Data, y2.Data)
	}

	// The weights file holds the precision of the model.
	sf, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	wantDType := DTypeF32
	if _, ok := any(T(0)).(float64); ok {
		wantDType = DTypeF64
	}
	var names []string
	for _, st := range sf.Tensors {
		names = append(names, st.Name)
		if st.DType != wantDType {
			t.Errorf("%s is %s, want %s", st.Name, st.DType, wantDType)
		}
	}
	if want := []string{"features.0.weight", "features.0.bias", "classifier.weight", "classifier.bias"}; !slices.Equal(names, want) {
		t.Errorf("tensors %v, want state-dict order %v", names, want)
	}
	if sf.Metadata["format"] != "pt" {
		t.Errorf("metadata %v, want format=pt", sf.Metadata)
	}
	fi, err := os.Stat(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("config.json has mode %v, want 0644", fi.Mode().Perm())
	}
}

// ioCounter is a layer with an int64 scalar buffer, standing in for
// BatchNorm's num_batches_tracked.
type ioCounter[T Float] struct{ n *Param[T] }

func newIOCounter[T Float](name string) *ioCounter[T] {
	return &ioCounter[T]{n: &Param[T]{Name: name, Value: NewTensor[T](), Buffer: true, Int64: true}}
}
func (l *ioCounter[T]) Kind() string                              { return "counter" }
func (l *ioCounter[T]) OutShape(in []int) ([]int, error)          { return in, nil }
func (l *ioCounter[T]) Forward(x *Tensor[T], _ bool) *Tensor[T]   { return x }
func (l *ioCounter[T]) Backward(dy *Tensor[T], _ bool) *Tensor[T] { return dy }
func (l *ioCounter[T]) Params() []*Param[T]                       { return []*Param[T]{l.n} }

func withCounter[T Float](t *testing.T, seed uint64, count T) *Model[T] {
	t.Helper()
	m := mustNew[T](t, mlpConfig(8), seed)
	c := newIOCounter[T]("features.1.num_batches_tracked")
	c.n.Value.Data[0] = count
	m.Blocks[0].Layers = slices.Insert(m.Blocks[0].Layers, 1, Layer[T](c))
	return m
}

func TestStateDictInt64(t *testing.T) {
	m := withCounter[float64](t, 1, 1<<40+3)
	sd, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, sd, nil); err != nil {
		t.Fatal(err)
	}
	sf, err := safetensors.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	st := sf.Tensor("features.1.num_batches_tracked")
	if st == nil || st.DType != DTypeI64 || len(st.Shape) != 0 {
		t.Fatalf("num_batches_tracked = %+v, want an I64 scalar of shape []", st)
	}
	if !bytes.Equal(st.Data, []byte{3, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("num_batches_tracked bytes % x, want 2^40+3 little-endian", st.Data)
	}

	m2 := withCounter[float64](t, 2, 0)
	if err := m2.LoadState(sf.Tensors); err != nil {
		t.Fatal(err)
	}
	for i, p := range m2.Params() {
		if !sameBits(p.Value.Data, m.Params()[i].Value.Data) {
			t.Errorf("%s differs after LoadState", p.Name)
		}
	}

	// PyTorch writes the scalar as [], some tools as [1]; both load.
	st.Shape = []int{1}
	if err := m2.LoadState(sf.Tensors); err != nil {
		t.Errorf("num_batches_tracked of shape [1]: %v", err)
	}

	// A float count is a wrong file, not a count.
	st.Shape = []int{}
	st.DType = DTypeF64
	if err := m2.LoadState(sf.Tensors); err == nil || !strings.Contains(err.Error(), `"features.1.num_batches_tracked": dtype F64, want I64`) {
		t.Errorf("F64 num_batches_tracked: error %v, want a dtype mismatch naming it", err)
	}

	// A count that is not an integer cannot be written as I64.
	m.Blocks[0].Layers[1].Params()[0].Value.Data[0] = 0.5
	if _, err := m.StateDict(); err == nil || !strings.Contains(err.Error(), "num_batches_tracked") {
		t.Errorf("StateDict with a fractional count: error %v, want one naming the buffer", err)
	}
}

// TestLoadStateCrossPrecision: float32 weights load exactly into a float64
// model, and float64 ones round into a float32 model.
func TestLoadStateCrossPrecision(t *testing.T) {
	m32 := mustNew[float32](t, mlpConfig(8), 5)
	sd, err := m32.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	m64 := mustNew[float64](t, mlpConfig(8), 6)
	if err := m64.LoadState(sd); err != nil {
		t.Fatal(err)
	}
	for i, p := range m64.Params() {
		if !sameBits(Convert[float32](p.Value).Data, m32.Params()[i].Value.Data) {
			t.Errorf("%s: float32 → float64 → float32 is not exact", p.Name)
		}
	}
	sd64, err := m64.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	back := mustNew[float32](t, mlpConfig(8), 8)
	if err := back.LoadState(sd64); err != nil {
		t.Fatal(err)
	}
	for i, p := range back.Params() {
		if !sameBits(p.Value.Data, m32.Params()[i].Value.Data) {
			t.Errorf("%s: float32 → F64 → float32 is not exact", p.Name)
		}
	}
}

func TestLoadStateErrors(t *testing.T) {
	m := mustNew[float32](t, mlpConfig(8), 1)
	sd, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func([]SafeTensor) []SafeTensor) []SafeTensor {
		c := slices.Clone(sd)
		for i := range c {
			c[i].Shape = slices.Clone(c[i].Shape)
		}
		return f(c)
	}
	for _, c := range []struct {
		name    string
		tensors []SafeTensor
		want    string
	}{
		{"missing", edit(func(s []SafeTensor) []SafeTensor { return slices.Delete(s, 1, 2) }),
			`missing tensors ["features.0.bias"]`},
		{"extra", edit(func(s []SafeTensor) []SafeTensor {
			return append(s, SafeTensor{Name: "features.9.weight", DType: DTypeF32, Shape: []int{}, Data: make([]byte, 4)})
		}), `unexpected tensors ["features.9.weight"]`},
		{"shape", edit(func(s []SafeTensor) []SafeTensor { s[0].Shape = []int{4, 8}; return s }),
			`tensor "features.0.weight": shape [4 8], want [8 4]`},
		{"rank", edit(func(s []SafeTensor) []SafeTensor { s[3].Shape = []int{3, 1}; return s }),
			`tensor "classifier.bias": shape [3 1], want [3]`},
		{"duplicate", edit(func(s []SafeTensor) []SafeTensor { return append(s, s[0]) }),
			`tensor "features.0.weight": given twice`},
		{"bad dtype", edit(func(s []SafeTensor) []SafeTensor { s[2].DType = "U8"; return s }),
			`tensor "classifier.weight": dtype U8 is not supported`},
		{"int64 weight", edit(func(s []SafeTensor) []SafeTensor { s[3].DType = DTypeI64; s[3].Data = make([]byte, 24); return s }),
			`tensor "classifier.bias": dtype I64, want a float dtype`},
		{"short data", edit(func(s []SafeTensor) []SafeTensor { s[2].Data = s[2].Data[:4]; return s }),
			`tensor "classifier.weight": shape [3 8] of F32 needs 96 bytes, Data has 4`},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := mustNew[float32](t, mlpConfig(8), 2)
			before := target.Params()[0].Value.Clone()
			err := target.LoadState(c.tensors)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if !sameBits(target.Params()[0].Value.Data, before.Data) {
				t.Error("a failed LoadState changed the model")
			}
		})
	}
}

func TestLoadModelMismatch(t *testing.T) {
	dir := t.TempDir()
	if err := SaveModel(dir, mustNew[float32](t, mlpConfig(8), 1)); err != nil {
		t.Fatal(err)
	}
	// A config that wants 6 hidden units does not match 8-unit weights.
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(`"out_features": 8`), []byte(`"out_features": 6`))
	b = bytes.ReplaceAll(b, []byte(`"in_features": 8`), []byte(`"in_features": 6`))
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadModel[float32](dir)
	want := filepath.Join(dir, WeightsFile) + `: tensor "features.0.weight": shape [8 4], want [6 4]`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to contain %q", err, want)
	}

	// A corrupt weights file is named, with the tensor at fault.
	w := filepath.Join(dir, WeightsFile)
	raw, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadModel[float32](dir)
	var fe *safetensors.FormatError
	if !errors.As(err, &fe) || fe.Path != w || fe.Tensor != "classifier.bias" {
		t.Errorf("truncated weights: error %v, want a safetensors.FormatError naming %s and classifier.bias", err, w)
	}

	// A missing file is named as the caller knows it.
	os.Remove(w)
	_, err = LoadModel[float32](dir)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), w) {
		t.Errorf("missing weights: error %v, want ErrNotExist naming %s", err, w)
	}
}

func TestLoadModelFS(t *testing.T) {
	m := mustNew[float32](t, mlpConfig(8), 4)
	dir := t.TempDir()
	if err := SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fsys := fstest.MapFS{
		"zoo/mlp/" + ConfigFile:  {Data: read(ConfigFile)},
		"zoo/mlp/" + WeightsFile: {Data: read(WeightsFile)},
		"zoo/bad/" + ConfigFile:  {Data: read(ConfigFile)},
		"zoo/bad/" + WeightsFile: {Data: read(WeightsFile)[:30]},
	}
	got, err := LoadModelFS[float32](fsys, "zoo/mlp")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got.Params() {
		if !sameBits(p.Value.Data, m.Params()[i].Value.Data) {
			t.Errorf("%s differs", p.Name)
		}
	}
	_, err = LoadModelFS[float32](fsys, "zoo/bad")
	if err == nil || !strings.HasPrefix(err.Error(), "zoo/bad/model.safetensors: safetensors: ") {
		t.Errorf("error %v, want one naming zoo/bad/model.safetensors", err)
	}
	_, err = LoadModelFS[float32](fsys, "zoo/none")
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "zoo/none/config.json: ") {
		t.Errorf("error %v, want ErrNotExist naming zoo/none/config.json", err)
	}
}

func TestLoadWeights(t *testing.T) {
	m := mustNew[float64](t, mlpConfig(8), 9)
	dir := t.TempDir()
	if err := SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(dir, WeightsFile)
	got, err := LoadWeights[float64](mlpConfig(8), w)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(got.Params()[2].Value.Data, m.Params()[2].Value.Data) {
		t.Error("classifier.weight differs")
	}
	_, err = LoadWeights[float64](mlpConfig(5), w)
	if err == nil || !strings.Contains(err.Error(), `tensor "features.0.weight": shape [8 4], want [5 4]`) {
		t.Errorf("error %v, want a shape mismatch naming features.0.weight", err)
	}
	bad := mlpConfig(8)
	bad.Classes = bad.Classes[:1]
	if _, err := LoadWeights[float64](bad, w); err == nil {
		t.Error("an invalid config loaded")
	}
}

// TestSaveModelKeepsOldOnError: a model whose state cannot be written
// leaves the saved model untouched.
func TestSaveModelKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	if err := SaveModel(dir, mustNew[float32](t, mlpConfig(8), 1)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, WeightsFile))
	m := withCounter[float32](t, 2, 0.5)
	if err := SaveModel(dir, m); err == nil {
		t.Fatal("saving a fractional int64 buffer succeeded")
	}
	after, _ := os.ReadFile(filepath.Join(dir, WeightsFile))
	if !bytes.Equal(before, after) {
		t.Error("a failed save changed model.safetensors")
	}
}

// TestLoadStateNonFinite: weights holding NaN or an infinity are refused
// when a model is loaded, naming the tensor, and leave the model as it was.
func TestLoadStateNonFinite(t *testing.T) {
	m := mustNew[float32](t, mlpConfig(8), 1)
	sd, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	// f32 returns the state with element k of tensor i set to v.
	f32 := func(i, k int, v float32) []SafeTensor {
		c := slices.Clone(sd)
		c[i].Data = slices.Clone(c[i].Data)
		binary.LittleEndian.PutUint32(c[i].Data[4*k:], math.Float32bits(v))
		return c
	}
	// An F64 tensor whose values are finite in float64 but not in float32.
	wide := slices.Clone(sd)
	w := m.Params()[2].Value.Data
	wide[2] = SafeTensor{Name: wide[2].Name, DType: DTypeF64, Shape: slices.Clone(wide[2].Shape), Data: make([]byte, 8*len(w))}
	for i := range w {
		binary.LittleEndian.PutUint64(wide[2].Data[8*i:], math.Float64bits(float64(w[i])))
	}
	binary.LittleEndian.PutUint64(wide[2].Data[8*3:], math.Float64bits(1e300))
	for _, c := range []struct {
		name    string
		tensors []SafeTensor
		want    string
	}{
		{"NaN", f32(0, 5, float32(math.NaN())), `tensor "features.0.weight": weights must be finite: 1 of 32 values are NaN or infinite (the first, element 5, is NaN)`},
		{"Inf", f32(3, 1, float32(math.Inf(-1))), `tensor "classifier.bias": weights must be finite: 1 of 3 values are NaN or infinite (the first, element 1, is -Inf)`},
		{"beyond float32", wide, `tensor "classifier.weight": weights must be finite: 1 of 24 values are NaN or infinite (the first, element 3, is +Inf (out of float32 range))`},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := mustNew[float32](t, mlpConfig(8), 2)
			before := paramValues(target)
			err := target.LoadState(c.tensors)
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrNonFinite) {
				t.Fatalf("error %v, want it to contain %q and wrap ErrNonFinite", err, c.want)
			}
			for i, p := range target.Params() {
				if !sameBits(p.Value.Data, before[i]) {
					t.Errorf("a failed LoadState changed %s", p.Name)
				}
			}
		})
	}

	// The same through a saved model folder: the error names the file too.
	dir := t.TempDir()
	if err := SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, WeightsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the last value of the file (classifier.bias[2], the last
	// tensor in state-dict order) with NaN bits.
	binary.LittleEndian.PutUint32(b[len(b)-4:], 0x7fc00001)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadModel[float32](dir)
	if want := `tensor "classifier.bias": weights must be finite`; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadModel: %v, want an error naming %s and containing %q", err, path, want)
	}
}

// paramValues copies every parameter's values, for before/after checks.
func paramValues[T Float](m *Model[T]) [][]T {
	var out [][]T
	for _, p := range m.Params() {
		out = append(out, slices.Clone(p.Value.Data))
	}
	return out
}

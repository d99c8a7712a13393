package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"

	"thaw/trainer/atomicfile"

	"thaw/trainer/safetensors"
)

// The files of a saved model, as in a Hugging Face model folder.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// StateDict returns every parameter and buffer of m, in state-dict order,
// under its PyTorch name: F32 tensors for a float32 model, F64 for a
// float64 one, and I64 for Int64 buffers. A one-element Int64 buffer is a
// scalar of shape [], as PyTorch's num_batches_tracked is. It returns an
// error naming the parameter if an Int64 buffer holds a value that is not
// an integer.
func (m *Model[T]) StateDict() ([]SafeTensor, error) {
	dtype := DTypeF32
	if _, ok := any(T(0)).(float64); ok {
		dtype = DTypeF64
	}
	ps := m.Params()
	out := make([]SafeTensor, 0, len(ps))
	for _, p := range ps {
		dt := dtype
		if p.Int64 {
			dt = DTypeI64
		}
		st, err := FromTensor(p.Name, p.Value, dt)
		if err != nil {
			return nil, err
		}
		if p.Int64 && p.Value.Len() == 1 {
			st.Shape = []int{}
		}
		out = append(out, st)
	}
	return out, nil
}

// LoadState copies tensors into m's parameters and buffers by name, as
// PyTorch's strict load_state_dict does: every parameter must be present
// with its shape (a one-element Int64 buffer also accepts [] or [1]), and a
// tensor that matches no parameter is an error too. Any float dtype loads
// into a parameter of either precision (see ToTensor for the rounding);
// Int64 buffers take I64 only, and parameters no I64. A float tensor
// holding NaN or an infinity once converted to T is refused with an error
// wrapping ErrNonFinite. Errors name the tensor, and for a shape the
// expected and the given one. m is unchanged if LoadState returns an error.
func (m *Model[T]) LoadState(tensors []SafeTensor) error {
	byName := make(map[string]*SafeTensor, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		if _, dup := byName[t.Name]; dup {
			return fmt.Errorf("tensor %q: given twice", t.Name)
		}
		byName[t.Name] = t
	}

	// Check everything first, so that a bad file leaves the model as it was.
	// Float tensors are decoded once into scratch for the finiteness check
	// and again into the model once all of them have passed.
	ps := m.Params()
	var scratch []T
	var missing []string
	for _, p := range ps {
		t, ok := byName[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		if !shapeFits(p, t.Shape) {
			return fmt.Errorf("tensor %q: shape %v, want %v", p.Name, t.Shape, p.Value.Shape)
		}
		if safetensors.Size(t.DType) == 0 {
			return safetensors.Unsupported(t.Name, t.DType)
		}
		if p.Int64 != (t.DType == DTypeI64) {
			want := "a float dtype"
			if p.Int64 {
				want = DTypeI64
			}
			return safetensors.Errorf(t.Name, "dtype %s, want %s", t.DType, want)
		}
		if n, _ := safetensors.ByteSize(t.Shape, t.DType); n != uint64(len(t.Data)) {
			return safetensors.Errorf(t.Name, "shape %v of %s needs %d bytes, Data has %d", t.Shape, t.DType, n, len(t.Data))
		}
		if !p.Int64 {
			scratch = slices.Grow(scratch[:0], p.Value.Len())[:p.Value.Len()]
			decodeInto(scratch, t.DType, t.Data)
			if err := checkFinite(t.Name, t.DType, scratch); err != nil {
				return err
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tensors %q", missing)
	}
	if len(tensors) > len(ps) {
		want := make(map[string]bool, len(ps))
		for _, p := range ps {
			want[p.Name] = true
		}
		var extra []string
		for _, t := range tensors {
			if !want[t.Name] {
				extra = append(extra, t.Name)
			}
		}
		return fmt.Errorf("unexpected tensors %q (not in the model's config)", extra)
	}

	for _, p := range ps {
		t := byName[p.Name]
		decodeInto(p.Value.Data, t.DType, t.Data)
	}
	return nil
}

// checkFinite returns an error naming the tensor if a decoded value is NaN
// or infinite: such weights make every prediction NaN, and a training run
// "diverge" at its first step. Values of a wider dtype beyond the model's
// precision (an F64 1e300 in a float32 model) become infinite on decoding
// and are refused the same way.
func checkFinite[T Float](name, dtype string, vals []T) error {
	bad, first := 0, -1
	for i, v := range vals {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			if bad == 0 {
				first = i
			}
			bad++
		}
	}
	if bad == 0 {
		return nil
	}
	what := "NaN"
	if v := float64(vals[first]); !math.IsNaN(v) {
		what = fmt.Sprint(v)
		if _, f32 := any(T(0)).(float32); f32 && dtype == DTypeF64 {
			what += " (out of float32 range)"
		}
	}
	return fmt.Errorf("tensor %q: %w: %d of %d values are NaN or infinite (the first, element %d, is %s)", name, ErrNonFinite, bad, len(vals), first, what)
}

// ErrNonFinite is wrapped by LoadState's error for a tensor holding NaN or
// an infinity.
var ErrNonFinite = errors.New("weights must be finite")

// shapeFits reports whether a tensor of the given shape loads into p.
func shapeFits[T Float](p *Param[T], shape []int) bool {
	if sameShape(p.Value.Shape, shape) {
		return true
	}
	// num_batches_tracked is a scalar in PyTorch; accept it as [1] too.
	return p.Int64 && p.Value.Len() == 1 && (len(shape) == 0 || sameShape(shape, []int{1}))
}

// SaveModel writes m to the folder dir, creating it if needed: config.json
// (m.Config, indented) and model.safetensors (StateDict, with the metadata
// {"format": "pt"} that Hugging Face's loaders expect), each atomically.
// The weights are written first, so a crash between the two leaves the old
// config, which LoadModel then checks against the new weights.
func SaveModel[T Float](dir string, m *Model[T]) error {
	sd, err := m.StateDict()
	if err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(m.Config, "", "  ")
	if err != nil {
		return err
	}
	cfg = append(cfg, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err = atomicfile.Write(filepath.Join(dir, WeightsFile), 0o644, func(w io.Writer) error {
		return safetensors.Write(w, sd, map[string]string{"format": "pt"})
	})
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ConfigFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(cfg)
		return err
	})
}

// LoadModel reads a model saved by SaveModel (or any folder with a
// config.json and a model.safetensors in thaw's format): the config is
// validated, and the weights must match it exactly (see LoadState). A
// config written by hand may leave layer names and sizes to the weights
// (see Config.InferSizes). Errors name the file and the tensor.
func LoadModel[T Float](dir string) (*Model[T], error) {
	return loadModel[T](os.DirFS(dir), ".", func(file string) string { return filepath.Join(dir, file) })
}

// LoadModelFS is LoadModel for a folder dir of fsys, such as the embedded
// zoo; dir is slash-separated, "." for the root.
func LoadModelFS[T Float](fsys fs.FS, dir string) (*Model[T], error) {
	return loadModel[T](fsys, dir, func(file string) string { return path.Join(dir, file) })
}

// loadModel reads dir of fsys; errors name files as display(file).
func loadModel[T Float](fsys fs.FS, dir string, display func(file string) string) (*Model[T], error) {
	b, err := fs.ReadFile(fsys, path.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", display(ConfigFile), unwrapPathError(err))
	}
	cfg, err := decodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", display(ConfigFile), err)
	}
	// A complete config is checked before the weights are read; one that
	// leaves sizes to the weights is completed from them first.
	var sf *safetensors.File
	readWeights := func() error {
		sf, err = safetensors.ReadFS(fsys, path.Join(dir, WeightsFile))
		if err != nil {
			return safetensors.WithPath(display(WeightsFile), unwrapPathError(err))
		}
		return nil
	}
	if cfg.needsSizes() {
		if err := readWeights(); err != nil {
			return nil, err
		}
		if err := cfg.InferSizes(sf.Tensors); err != nil {
			return nil, fmt.Errorf("%s: %w", display(ConfigFile), err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", display(ConfigFile), err)
	}
	if sf == nil {
		if err := readWeights(); err != nil {
			return nil, err
		}
	}
	return modelFromState[T](cfg, sf, display(WeightsFile))
}

// unwrapPathError drops the *fs.PathError around an error so that the path
// is not given twice, in fsys's form and in the caller's.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// LoadWeights builds a model from cfg, which it validates, and loads the
// safetensors file at path into it, strictly (see LoadState). Sizes cfg
// leaves out are inferred from the weights (see Config.InferSizes) in the
// model's copy of the config; cfg itself is not changed.
func LoadWeights[T Float](cfg *Config, path string) (*Model[T], error) {
	var sf *safetensors.File
	if cfg.needsSizes() {
		var err error
		if sf, err = safetensors.ReadFile(path); err != nil {
			return nil, err
		}
		c := *cfg
		c.Blocks = slices.Clone(cfg.Blocks)
		c.InputShape = slices.Clone(cfg.InputShape)
		if err := c.InferSizes(sf.Tensors); err != nil {
			return nil, err
		}
		cfg = &c
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sf == nil {
		var err error
		if sf, err = safetensors.ReadFile(path); err != nil {
			return nil, err
		}
	}
	return modelFromState[T](cfg, sf, path)
}

func modelFromState[T Float](cfg *Config, sf *safetensors.File, name string) (*Model[T], error) {
	m, err := build[T](cfg)
	if err != nil {
		return nil, err
	}
	if err := m.LoadState(sf.Tensors); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

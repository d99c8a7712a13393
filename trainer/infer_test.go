package trainer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"thaw/trainer/safetensors"
)

// stripSizes returns a copy of cfg without what InferSizes infers: every
// size of linear, conv2d and batchnorm layers, and the input shape when the
// first layer is linear.
func stripSizes(cfg *Config) *Config {
	c := *cfg
	c.Blocks = nil
	for _, b := range cfg.Blocks {
		nb := BlockConfig{Name: b.Name}
		for _, l := range b.Layers {
			switch l.Type {
			case "linear":
				l.InFeatures, l.OutFeatures = 0, 0
			case "conv2d":
				l.InChannels, l.OutChannels, l.KernelSize = 0, 0, 0
			case "batchnorm1d", "batchnorm2d":
				l.NumFeatures = 0
			}
			nb.Layers = append(nb.Layers, l)
		}
		c.Blocks = append(c.Blocks, nb)
	}
	if len(c.Blocks) > 0 && len(c.Blocks[0].Layers) > 0 && c.Blocks[0].Layers[0].Type == "linear" {
		c.InputShape = nil
	}
	return &c
}

// TestInferSizes: a model saved by thaw, its config stripped of every size
// the weights hold, loads back to the same config and weights.
func TestInferSizes(t *testing.T) {
	for _, cfg := range []*Config{smallCNN(), mlpConfig(8)} {
		t.Run(cfg.Name, func(t *testing.T) {
			m := mustNew[float32](t, cfg, 3)
			dir := t.TempDir()
			if err := SaveModel(dir, m); err != nil {
				t.Fatal(err)
			}
			stripped, err := json.Marshal(stripSizes(cfg))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseConfig(stripped); err == nil {
				t.Fatal("a stripped config validates on its own; the test strips nothing")
			}
			writeFile(t, filepath.Join(dir, ConfigFile), stripped)
			got, err := LoadModel[float32](dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Config, *cfg) {
				t.Errorf("inferred config\n%+v\nwant\n%+v", got.Config, *cfg)
			}
			for i, p := range got.Params() {
				if !sameBits(p.Value.Data, m.Params()[i].Value.Data) {
					t.Errorf("%s differs", p.Name)
				}
			}
		})
	}
}

// TestInferSizesSequential: an nn.Sequential's state dict names layers by
// position; a config that names only kinds takes those names and sizes.
func TestInferSizesSequential(t *testing.T) {
	const cfgJSON = `{"name":"seq","classes":["a","b","c"],"blocks":[
		{"name":"body","layers":[{"type":"linear"},{"type":"relu"},{"type":"batchnorm1d"}]},
		{"name":"head","layers":[{"type":"dropout","p":0.1},{"type":"linear"}]}]}`
	cfg, err := decodeConfig([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	tensors := []SafeTensor{
		{Name: "0.weight", Shape: []int{6, 5}}, {Name: "0.bias", Shape: []int{6}},
		{Name: "2.weight", Shape: []int{6}},
		{Name: "4.weight", Shape: []int{3, 6}}, {Name: "4.bias", Shape: []int{3}},
	}
	if err := cfg.InferSizes(tensors); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []LayerConfig{
		{Type: "linear", Name: "0", InFeatures: 5, OutFeatures: 6}, {Type: "relu"}, {Type: "batchnorm1d", Name: "2", NumFeatures: 6},
		{Type: "dropout", P: 0.1}, {Type: "linear", Name: "4", InFeatures: 6, OutFeatures: 3},
	}
	got := append(append([]LayerConfig{}, cfg.Blocks[0].Layers...), cfg.Blocks[1].Layers...)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(cfg.InputShape, []int{5}) {
		t.Errorf("layers %+v input %v\nwant %+v input [5]", got, cfg.InputShape, want)
	}
}

func TestInferSizesErrors(t *testing.T) {
	conv := func(shape ...int) []SafeTensor { return []SafeTensor{{Name: "0.weight", Shape: shape}} }
	for _, tc := range []struct {
		name, cfg string
		tensors   []SafeTensor
		want      string
	}{
		{"no tensor", `{"input_shape":[1,4,4],"blocks":[{"name":"c","layers":[{"type":"conv2d","name":"features.0"}]}]}`, conv(2, 1, 3, 3),
			`config: block "c", layer 0 (conv2d): features.0: sizes not given and no tensor "features.0.weight" to infer them from`},
		{"wrong rank", `{"input_shape":[1,4,4],"blocks":[{"name":"c","layers":[{"type":"conv2d"}]}]}`, conv(2, 9),
			`config: block "c", layer 0 (conv2d): 0: tensor "0.weight" has shape [2 9], want [out_channels in_channels kernel_size kernel_size]`},
		{"not square", `{"input_shape":[1,4,4],"blocks":[{"name":"c","layers":[{"type":"conv2d"}]}]}`, conv(2, 1, 3, 1),
			`config: block "c", layer 0 (conv2d): 0: tensor "0.weight" has a 3×1 kernel; only square kernels are supported`},
		{"no input shape", `{"blocks":[{"name":"c","layers":[{"type":"conv2d"}]}]}`, conv(2, 1, 3, 3),
			`config: input_shape is empty and cannot be inferred: give it unless the first layer is linear`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := decodeConfig([]byte(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.InferSizes(tc.tensors); err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}

	// Through LoadModel the error names config.json.
	dir := t.TempDir()
	m := mustNew[float32](t, mlpConfig(8), 1)
	if err := SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, ConfigFile), []byte(`{"classes":["a","b","c"],"blocks":[{"name":"h","layers":[{"type":"linear","name":"nosuch"}]}]}`))
	_, err := LoadModel[float32](dir)
	if want := filepath.Join(dir, ConfigFile) + `: config: block "h", layer 0 (linear): nosuch: sizes not given and no tensor "nosuch.weight"`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("LoadModel: %v, want %q…", err, want)
	}
}

// sequentialConfig is the README's worked example: the config.json of the
// nn.Sequential in testdata/torch/export_sequential.py, naming only layer
// kinds, the pooling and padding the weights cannot say, blocks, the input
// and classes.
const sequentialConfig = `{
  "name": "my-cnn",
  "input_shape": [1, 8, 8],
  "classes": ["cat", "dog", "owl"],
  "blocks": [
    {"name": "conv", "layers": [
      {"type": "conv2d", "padding": 1}, {"type": "batchnorm2d"}, {"type": "relu"},
      {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"}]},
    {"name": "fc", "layers": [{"type": "linear"}, {"type": "relu"}]},
    {"name": "head", "layers": [{"type": "linear"}]}
  ]
}`

// TestInferSizesTorch: a model made in PyTorch, an nn.Sequential whose
// state_dict PyTorch wrote, loads with a config that leaves every size to
// the weights, and computes PyTorch's logits.
func TestInferSizesTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PyTorch process; skipped with -short")
	}
	if err := exec.Command(torchPython, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch is not importable by %s (%v); install python3-torch to compare with it", torchPython, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(torchPython, "export_sequential.py", dir)
	cmd.Dir = "testdata/torch"
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export_sequential.py: %v\n%s", err, b)
	}
	writeFile(t, filepath.Join(dir, ConfigFile), []byte(sequentialConfig))
	m, err := LoadModel[float32](dir)
	if err != nil {
		t.Fatal(err)
	}
	io, err := safetensors.ReadFile(filepath.Join(dir, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := ToTensor[float32](io.Tensor("x"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ToTensor[float32](io.Tensor("logits"))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Forward(x, false)
	if !got.SameShape(want) {
		t.Fatalf("logits shape %v, want %v", got.Shape, want.Shape)
	}
	// Same float32 arithmetic in another order: a few ulps of the logits.
	if e := relErr(toF64(got.Data), toF64(want.Data)); e > 1e-5 {
		t.Errorf("thaw and torch logits differ: relative error %.3g, want < 1e-5\nthaw  %v\ntorch %v", e, got.Data, want.Data)
	}
	l := m.Config.Blocks[1].Layers[0]
	if l.Name != "5" || l.InFeatures != 64 || l.OutFeatures != 16 {
		t.Errorf("fc layer inferred as %+v, want 5: 64 → 16", l)
	}
	// Saving writes the completed config, which validates on its own.
	out := t.TempDir()
	if err := SaveModel(out, m); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(filepath.Join(out, ConfigFile)); err != nil {
		t.Errorf("saved config: %v", err)
	}
}

package trainer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParseConfig feeds config.json parsing: seeded with the zoo's real
// configs and the test models. A config that parses must build a model
// (Validate promised it) and survive a JSON round trip unchanged.
func FuzzParseConfig(f *testing.F) {
	zoo, _ := filepath.Glob("../assets/zoo/*/config.json")
	for _, p := range zoo {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, cfg := range []*Config{smallCNN(), benchMLP(), benchCNN(), mlpConfig(8)} {
		b, err := json.Marshal(cfg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","input_shape":[3],"classes":["a","b"],"blocks":[{"name":"h","layers":[{"type":"linear","name":"h","in_features":3,"out_features":2}]}]}`))
	f.Add([]byte(`{"input_shape":[1,4,4],"classes":["a","b"],"blocks":[{"name":"c","layers":[{"type":"conv2d","name":"c","in_channels":1,"out_channels":2,"kernel_size":9}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig(b)
		if err != nil {
			return
		}
		if _, err := build[float32](cfg); err != nil {
			t.Fatalf("ParseConfig accepted a config that does not build: %v\n%s", err, b)
		}
		again, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg2, err := ParseConfig(again)
		if err != nil {
			t.Fatalf("a parsed config does not parse again: %v\n%s", err, again)
		}
		if b2, _ := json.Marshal(cfg2); string(b2) != string(again) {
			t.Fatalf("round trip changed the config:\n%s\n%s", again, b2)
		}

		// Stripped of every size its weights hold, the config is completed
		// from the shapes of its parameters to what it was.
		m, _ := build[float32](cfg)
		var tensors []SafeTensor
		for _, p := range m.Params() {
			tensors = append(tensors, SafeTensor{Name: p.Name, Shape: p.Value.Shape})
		}
		stripped := stripSizes(cfg)
		if err := stripped.InferSizes(tensors); err != nil {
			t.Fatalf("InferSizes on a valid config's own shapes: %v\n%s", err, again)
		}
		if b3, _ := json.Marshal(stripped); string(b3) != string(again) {
			t.Fatalf("inferred config differs:\n%s\nwant\n%s", b3, again)
		}
	})
}

// FuzzInferSizes feeds a config and the shapes of its weights (a JSON
// object of name → shape) to InferSizes. It must not panic, and a config it
// completes that validates has each inferred layer's weight in the shape
// its tensor has.
func FuzzInferSizes(f *testing.F) {
	f.Add([]byte(sequentialConfig), []byte(`{"0.weight":[4,1,3,3],"1.weight":[4],"5.weight":[16,64],"7.weight":[3,16]}`))
	f.Add([]byte(`{"classes":["a","b"],"blocks":[{"name":"h","layers":[{"type":"linear"}]}]}`), []byte(`{"0.weight":[2,3]}`))
	f.Add([]byte(`{"input_shape":[1,4,4],"classes":["a","b"],"blocks":[{"name":"c","layers":[{"type":"conv2d","name":"c"},{"type":"flatten"},{"type":"linear","name":"h"}]}]}`),
		[]byte(`{"c.weight":[2,1,3,3],"h.weight":[2,8]}`))
	f.Add([]byte(`{"classes":["a","b"],"blocks":[{"name":"h","layers":[{"type":"batchnorm1d"},{"type":"linear","in_features":5}]}]}`), []byte(`{"0.weight":[5],"1.weight":[2,0]}`))
	f.Fuzz(func(t *testing.T, cfgJSON, shapesJSON []byte) {
		cfg, err := decodeConfig(cfgJSON)
		if err != nil {
			return
		}
		var shapes map[string][]int
		if json.Unmarshal(shapesJSON, &shapes) != nil {
			return
		}
		var tensors []SafeTensor
		for name, shape := range shapes {
			tensors = append(tensors, SafeTensor{Name: name, Shape: shape})
		}
		var orig Config // a deep copy of what was given
		if b, err := json.Marshal(cfg); err != nil || json.Unmarshal(b, &orig) != nil {
			t.Fatal("config does not round-trip through JSON")
		}
		if err := cfg.InferSizes(tensors); err != nil || cfg.Validate() != nil {
			return
		}
		m, err := build[float32](cfg)
		if err != nil {
			t.Fatalf("a validated config does not build: %v", err)
		}
		weights := map[string][]int{}
		for _, p := range m.Params() {
			weights[p.Name] = p.Value.Shape
		}
		// A layer given no size at all takes its weight's shape.
		for bi, b := range orig.Blocks {
			for li, l := range b.Layers {
				switch l.Type {
				case "linear", "conv2d", "batchnorm1d", "batchnorm2d":
				default:
					continue
				}
				if l.InFeatures|l.OutFeatures|l.InChannels|l.OutChannels|l.KernelSize|l.NumFeatures != 0 {
					continue
				}
				name := cfg.Blocks[bi].Layers[li].Name + ".weight"
				if !slices.Equal(weights[name], shapes[name]) {
					t.Fatalf("%s: the model's weight has shape %v, the tensor %v", name, weights[name], shapes[name])
				}
			}
		}
	})
}

func TestConfigLimits(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"huge linear", `{"input_shape":[3],"classes":["a","b"],"blocks":[
			{"name":"fc1","layers":[{"type":"linear","name":"fc1","in_features":3,"out_features":100000000}]},
			{"name":"head","layers":[{"type":"linear","name":"h","in_features":100000000,"out_features":2}]}]}`,
			`block "fc1", layer 0 (linear): more than 16777216 parameters`},
		{"overflowing conv", `{"input_shape":[1,4,4],"classes":["a","b"],"blocks":[
			{"name":"c","layers":[{"type":"conv2d","name":"c","in_channels":4611686018427387904,"out_channels":4,"kernel_size":3}]}]}`,
			`block "c", layer 0 (conv2d): more than 16777216 parameters`},
		{"many layers", `{"input_shape":[2048],"classes":["a","b"],"blocks":[
			{"name":"a","layers":[{"type":"linear","name":"a","in_features":2048,"out_features":2048}]},
			{"name":"b","layers":[{"type":"linear","name":"b","in_features":2048,"out_features":2048}]},
			{"name":"c","layers":[{"type":"linear","name":"c","in_features":2048,"out_features":2048}]},
			{"name":"d","layers":[{"type":"linear","name":"d","in_features":2048,"out_features":2048}]},
			{"name":"e","layers":[{"type":"linear","name":"e","in_features":2048,"out_features":2}]}]}`,
			`block "d", layer 0 (linear): the model passes 16777216 parameters`},
		{"huge input", `{"input_shape":[3,100000,100000],"classes":["a","b"],"blocks":[
			{"name":"h","layers":[{"type":"flatten"}]}]}`,
			`input_shape [3 100000 100000] has more than 16777216 values per sample`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

package trainer

import (
	"encoding/json"
	"os"
	"path/filepath"
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

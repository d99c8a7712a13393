package trainer

import (
	"errors"
	"strings"
	"testing"
)

// TestConfigActivationBudget: a config whose activations would take
// gigabytes is refused before anything is allocated, naming the layer; the
// budget is the caller's to set, and a small one refuses a small model.
func TestConfigActivationBudget(t *testing.T) {
	// Six parameters: a 1×1 convolution to 3 channels padded by 20,000 on a
	// 2×2 input outputs 3 × 40,001² values per sample and lowers 40,001²
	// columns twice, with a product of 3 × 40,001²: 8 × 40,001² × 4 bytes,
	// 47.7 GiB for one sample, before the max-pool that follows.
	const padded = `{"input_shape":[1,2,2],"classes":["a","b"],"blocks":[
		{"name":"c","layers":[{"type":"conv2d","name":"features.0","in_channels":1,"out_channels":3,"kernel_size":1,"padding":20000},
			{"type":"maxpool2d","kernel_size":40001},{"type":"flatten"}]},
		{"name":"head","layers":[{"type":"linear","name":"head","in_features":3,"out_features":2}]}]}`
	_, err := ParseConfig([]byte(padded))
	if want := `config: block "c", layer 0 (conv2d features.0): activations of a batch of 1 need 47.7 GiB from the input to here, over the 2.0 GiB budget`; err == nil || err.Error() != want {
		t.Errorf("padded conv: %v, want %q", err, want)
	}

	// A small CNN fits the default budget at batch 32 but not a small one.
	cfg := smallCNN()
	need, err := cfg.ActivationBytes(32)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckActivations(32, 0); err != nil {
		t.Errorf("default budget: %v", err)
	}
	if err := cfg.CheckActivations(32, need); err != nil {
		t.Errorf("budget %d, what it needs: %v", need, err)
	}
	err = cfg.CheckActivations(32, 16<<10)
	if want := `config: block "conv1", layer 0 (conv2d features.0): activations of a batch of 32 need`; err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "over the 16.0 KiB budget") {
		t.Errorf("16 KiB budget: %v, want %q … over the 16.0 KiB budget", err, want)
	}
	err = cfg.CheckActivations(32, need-1)
	if want := `config: block "head", layer 0 (linear classifier.4): activations of a batch of 32 need`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("one byte short: %v, want %q…", err, want)
	}

	// The per-layer figures, by hand for batch 2: conv 2→3, k3, pad 1 on
	// 8×7: output 3·8·7 = 168, input 112, columns 2·(18·56)·2 + 3·56·2.
	one := &Config{InputShape: []int{2, 8, 7}, Classes: []string{"a", "b"}, Blocks: []BlockConfig{
		{Name: "c", Layers: []LayerConfig{{Type: "conv2d", Name: "c", InChannels: 2, OutChannels: 3, KernelSize: 3, Padding: 1}, {Type: "flatten"}}},
		{Name: "h", Layers: []LayerConfig{{Type: "linear", Name: "h", InFeatures: 168, OutFeatures: 2}}},
	}}
	got, err := one.ActivationBytes(2)
	if err != nil {
		t.Fatal(err)
	}
	conv := 2*(112+168) + 2*56*(2*18+3)
	flatten := 2 * (168 + 168)
	linear := 2 * (168 + 2)
	if want := int64(4 * (conv + flatten + linear)); got != want {
		t.Errorf("ActivationBytes(2) = %d, want %d", got, want)
	}

	// A config that does not build says why, not how big it is.
	bad := smallCNN()
	bad.Blocks[0].Layers[0].InChannels = 5
	if _, err := bad.ActivationBytes(1); err == nil || errors.Is(err, ErrTooLarge) {
		t.Errorf("bad config: %v", err)
	}
}

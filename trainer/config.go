package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Config describes a base model: its architecture as an ordered list of
// named blocks, its input, the normalisation its inputs expect, and its
// classes. It is the content of a base model's config.json.
type Config struct {
	// Name identifies the model in the zoo ("digits-cnn").
	Name string `json:"name"`
	// Architecture is a short human description ("cnn", "mlp").
	Architecture string `json:"architecture,omitempty"`
	// InputShape is the per-sample input shape: [features] for tables,
	// [channels, height, width] for images.
	InputShape []int `json:"input_shape"`
	// Normalize, when set, maps raw inputs x to (x-mean)/std per channel
	// (images) or per feature (tables) before the first layer.
	Normalize *Normalization `json:"normalize,omitempty"`
	// Classes names the outputs of the head, in order.
	Classes []string `json:"classes"`
	// Blocks lists the units of freezing from input to output; the last one
	// is the head.
	Blocks []BlockConfig `json:"blocks"`
}

// Normalization holds per-channel (or per-feature) statistics. A single
// value applies to every channel.
type Normalization struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// BlockConfig is one block: a name and its layers, in order.
type BlockConfig struct {
	Name   string        `json:"name"`
	Layers []LayerConfig `json:"layers"`
}

// LayerConfig describes one layer. Type selects the layer; the other fields
// use PyTorch's argument names and apply to the types noted.
type LayerConfig struct {
	// Type is one of linear, conv2d, maxpool2d, flatten, relu, gelu,
	// dropout, batchnorm1d, batchnorm2d.
	Type string `json:"type"`
	// Name is the PyTorch module path of a layer with parameters
	// ("features.0"); its parameters are Name+".weight" and so on.
	Name string `json:"name,omitempty"`

	InFeatures  int `json:"in_features,omitempty"`  // linear
	OutFeatures int `json:"out_features,omitempty"` // linear

	InChannels  int `json:"in_channels,omitempty"`  // conv2d
	OutChannels int `json:"out_channels,omitempty"` // conv2d
	KernelSize  int `json:"kernel_size,omitempty"`  // conv2d, maxpool2d
	Stride      int `json:"stride,omitempty"`       // conv2d (default 1), maxpool2d (default kernel_size)
	Padding     int `json:"padding,omitempty"`      // conv2d, maxpool2d

	NumFeatures int     `json:"num_features,omitempty"` // batchnorm1d, batchnorm2d
	Eps         float64 `json:"eps,omitempty"`          // batchnorm (default 1e-5)
	Momentum    float64 `json:"momentum,omitempty"`     // batchnorm (default 0.1)

	P float64 `json:"p,omitempty"` // dropout probability
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes and validates a config.json. Unknown fields are an
// error, so a typo does not silently become a default. A config that
// leaves sizes to the weights (see InferSizes) does not validate on its
// own: LoadModel reads it with its weights.
func ParseConfig(b []byte) (*Config, error) {
	cfg, err := decodeConfig(b)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeConfig decodes a config.json strictly (unknown fields are an
// error) without validating it.
func decodeConfig(b []byte) (*Config, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, jsonError(b, err)
	}
	return &cfg, nil
}

// lineCol converts a byte offset into 1-based line and column numbers.
func lineCol(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// Validate checks that the config describes a buildable model: named,
// unique blocks; known layer types; shapes that chain from the input to a
// head with one output per class; at most MaxParams parameters, and
// activations of one sample within DefaultActivationBudget (see
// CheckActivations). Errors name the block and layer.
func (c *Config) Validate() error {
	if len(c.InputShape) == 0 {
		return errors.New("config: input_shape is empty")
	}
	size := 1
	for _, d := range c.InputShape {
		if d <= 0 {
			return fmt.Errorf("config: input_shape %v has a non-positive dimension", c.InputShape)
		}
		if size > MaxInputSize/d {
			return fmt.Errorf("config: input_shape %v has more than %d values per sample", c.InputShape, MaxInputSize)
		}
		size *= d
	}
	if len(c.Blocks) == 0 {
		return errors.New("config: no blocks")
	}
	if len(c.Classes) < 2 {
		return fmt.Errorf("config: %s: %w", nClasses(len(c.Classes)), ErrTooFewClasses)
	}
	seen := make(map[string]bool, len(c.Classes))
	for _, name := range c.Classes {
		if seen[name] {
			return fmt.Errorf("config: class %s appears twice", quote(name))
		}
		seen[name] = true
	}
	if err := checkClassNames(c.Classes); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if n := c.Normalize; n != nil {
		if len(n.Mean) != len(n.Std) || len(n.Mean) == 0 {
			return fmt.Errorf("config: normalize has %d means and %d stds", len(n.Mean), len(n.Std))
		}
		if len(n.Mean) != 1 && len(n.Mean) != c.InputShape[0] {
			return fmt.Errorf("config: normalize has %d values, input has %d channels", len(n.Mean), c.InputShape[0])
		}
		for _, s := range n.Std {
			if !(s > 0) {
				return fmt.Errorf("config: normalize std %v is not positive", s)
			}
		}
	}
	// A config is untrusted input: refuse sizes that would exhaust memory
	// before building anything.
	if err := c.checkParams(); err != nil {
		return err
	}
	// Building a model checks every layer and the shape chain without
	// drawing weights.
	m, err := build[float32](c)
	if err != nil {
		return err
	}
	// Activations are allocated by the first forward pass, not here: refuse
	// a config whose one sample would need more than the default budget.
	return checkActivations(m, 1, DefaultActivationBudget)
}

// Limits on what a config may ask for. thaw trains on a CPU: these are far
// beyond its useful range, and keep a hostile config.json from making
// validation allocate gigabytes.
const (
	MaxParams    = 1 << 24 // learnable values and buffers in all layers
	MaxInputSize = 1 << 24 // values in one input sample
)

// checkParams adds up the parameters the layers would allocate, with
// overflow checks, and refuses more than MaxParams, naming the layer that
// crosses the limit.
func (c *Config) checkParams() error {
	total := 0
	for _, b := range c.Blocks {
		for li, l := range b.Layers {
			n, ok := 0, true
			switch l.Type {
			case "linear": // weight and bias: (in+1)·out
				n, ok = mulCapped(l.InFeatures, l.OutFeatures)
				n += l.OutFeatures
			case "conv2d": // (in·k·k+1)·out
				n, ok = mulCapped(l.InChannels, l.KernelSize, l.KernelSize, l.OutChannels)
				n += l.OutChannels
			case "batchnorm1d", "batchnorm2d": // weight, bias, two running statistics
				n, ok = mulCapped(4, l.NumFeatures)
			}
			if !ok || n > MaxParams {
				return fmt.Errorf("config: block %q, layer %d (%s): more than %d parameters", b.Name, li, l.Type, MaxParams)
			}
			if total += n; total > MaxParams {
				return fmt.Errorf("config: block %q, layer %d (%s): the model passes %d parameters", b.Name, li, l.Type, MaxParams)
			}
		}
	}
	return nil
}

// mulCapped multiplies non-negative factors, reporting false when one is
// negative or the product passes MaxParams (before it can overflow).
func mulCapped(factors ...int) (int, bool) {
	n := 1
	for _, f := range factors {
		if f < 0 || (f > 0 && n > MaxParams/f) {
			return 0, false
		}
		n *= f
	}
	return n, true
}

// BlockNames returns the block names from input to output.
func (c *Config) BlockNames() []string {
	names := make([]string, len(c.Blocks))
	for i, b := range c.Blocks {
		names[i] = b.Name
	}
	return names
}

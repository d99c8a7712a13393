package trainer

import (
	"fmt"
	"slices"
	"strconv"
)

// InferSizes completes a config from the shapes of its weights, so that a
// config.json written by hand for a model made elsewhere names layer kinds,
// blocks, normalisation and classes, and leaves the sizes to the weights
// (as PyTorch's state dict already holds them):
//
//   - a layer with parameters and no name (its PyTorch module path) is
//     named by its position among all layers, counted from 0 across blocks,
//     as nn.Sequential names its children: "0", "3";
//   - linear: out_features and in_features from <name>.weight [out, in];
//   - conv2d: out_channels, in_channels and kernel_size from <name>.weight
//     [out, in, k, k] (stride and padding cannot be inferred: they default
//     to 1 and 0 and must be given otherwise);
//   - batchnorm1d, batchnorm2d: num_features from <name>.weight [n];
//   - input_shape, when empty and the first layer is linear: [in_features].
//
// Only zero (absent) fields are filled; a size given in the config is kept,
// so one that disagrees with its weights is reported by LoadState. It
// returns an error naming the block and layer when a size is missing and
// no tensor of the expected rank gives it, and changes c only then in part.
// A config that InferSizes completes must still pass Validate.
func (c *Config) InferSizes(tensors []SafeTensor) error {
	shapes := make(map[string][]int, len(tensors))
	for _, t := range tensors {
		shapes[t.Name] = t.Shape
	}
	return c.inferSizes(shapes)
}

// needsSizes reports whether c leaves something to InferSizes.
func (c *Config) needsSizes() bool {
	if len(c.InputShape) == 0 {
		return true
	}
	for _, b := range c.Blocks {
		for _, l := range b.Layers {
			switch l.Type {
			case "linear":
				if l.Name == "" || l.InFeatures == 0 || l.OutFeatures == 0 {
					return true
				}
			case "conv2d":
				if l.Name == "" || l.InChannels == 0 || l.OutChannels == 0 || l.KernelSize == 0 {
					return true
				}
			case "batchnorm1d", "batchnorm2d":
				if l.Name == "" || l.NumFeatures == 0 {
					return true
				}
			}
		}
	}
	return false
}

func (c *Config) inferSizes(shapes map[string][]int) error {
	pos := 0
	var first *LayerConfig
	for bi := range c.Blocks {
		b := &c.Blocks[bi]
		b.Layers = slices.Clone(b.Layers) // the caller's config may share them
		for li := range b.Layers {
			l := &b.Layers[li]
			if first == nil {
				first = l
			}
			if err := l.inferSizes(shapes, pos); err != nil {
				return fmt.Errorf("config: block %q, layer %d (%s): %w", b.Name, li, l.Type, err)
			}
			pos++
		}
	}
	if len(c.InputShape) == 0 && first != nil && first.Type == "linear" && first.InFeatures > 0 {
		c.InputShape = []int{first.InFeatures}
	}
	if len(c.InputShape) == 0 {
		return fmt.Errorf("config: input_shape is empty and cannot be inferred: give it unless the first layer is linear")
	}
	return nil
}

// inferSizes fills l's zero sizes from the weight of the layer at position
// pos; see Config.InferSizes.
func (l *LayerConfig) inferSizes(shapes map[string][]int, pos int) error {
	var want []*int // sizes to fill, in the weight's dimension order
	var form string
	switch l.Type {
	case "linear":
		want, form = []*int{&l.OutFeatures, &l.InFeatures}, "[out_features in_features]"
	case "conv2d":
		want, form = []*int{&l.OutChannels, &l.InChannels, &l.KernelSize, &l.KernelSize}, "[out_channels in_channels kernel_size kernel_size]"
	case "batchnorm1d", "batchnorm2d":
		want, form = []*int{&l.NumFeatures}, "[num_features]"
	default:
		return nil
	}
	if l.Name == "" {
		l.Name = strconv.Itoa(pos)
	}
	missing := false
	for _, p := range want {
		missing = missing || *p == 0
	}
	if !missing {
		return nil
	}
	name := l.Name + ".weight"
	shape, ok := shapes[name]
	switch {
	case !ok:
		return fmt.Errorf("%s: sizes not given and no tensor %q to infer them from", l.Name, name)
	case len(shape) != len(want):
		return fmt.Errorf("%s: tensor %q has shape %v, want %s", l.Name, name, shape, form)
	case l.Type == "conv2d" && shape[2] != shape[3]:
		return fmt.Errorf("%s: tensor %q has a %d×%d kernel; only square kernels are supported", l.Name, name, shape[2], shape[3])
	}
	for i, p := range want {
		if *p == 0 {
			*p = shape[i]
		}
	}
	return nil
}

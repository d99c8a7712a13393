package trainer

import "strings"

// Names of the metrics a run records. The store keeps them, the UI and the
// exports draw them; they are spelled here, and a per-block name is built
// by BlockMetric and taken apart by ParseBlockMetric, nowhere else.
const (
	MetricTrainLoss     = "train/loss"      // loss of each training step
	MetricValLoss       = "val/loss"        // mean validation loss at an evaluation
	MetricValAcc        = "val/acc"         // validation accuracy at an evaluation
	MetricSourceAcc     = "source/acc"      // source-task accuracy: the forgetting gauge
	MetricLR            = "lr"              // the top trainable block's learning rate
	MetricEpoch         = "epoch"           // fractional epoch at a report
	MetricSamplesPerSec = "samples_per_sec" // training throughput at a report
)

// Per-block diagnostics, named by BlockMetric.
const (
	BlockDrift       = "drift"        // ‖w−w₀‖/‖w₀‖
	BlockGradNorm    = "grad_norm"    // ‖g‖ of the last step
	BlockUpdateRatio = "update_ratio" // ‖Δw‖/‖w‖ of the last step
	BlockLR          = "lr"           // the block's learning rate
)

// BlockMetric names a per-block diagnostic: "block/<block>/<what>".
func BlockMetric(block, what string) string { return blockPrefix + block + "/" + what }

const blockPrefix = "block/"

// ParseBlockMetric splits a per-block metric name into its block and its
// diagnostic; ok is false when name is not one ("train/loss"). A block
// name may itself hold slashes: the diagnostic is what follows the last.
func ParseBlockMetric(name string) (block, what string, ok bool) {
	rest, ok := strings.CutPrefix(name, blockPrefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

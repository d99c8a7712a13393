package main

import (
	"fmt"
	"io"

	"thaw/trainer"
)

// presetFlag says what --lr and --epochs do to one preset, and what it
// does without them; --steps N makes every stage of every preset N steps.
type presetFlag struct {
	name, lr, epochs, neither string
}

// presetFlags is the one account of the flags for thaw train -h and the
// README (a test checks that the README has these rows).
func presetFlags() []presetFlag {
	floor := func(n int) string { return fmt.Sprintf("one epoch or %d steps, whichever is longer", n) }
	return []presetFlag{
		{"head", "the head at X", "N epochs", fmt.Sprintf("lr %g; ", trainer.DefaultHeadLR) + floor(trainer.DefaultHeadMinSteps)},
		{"fine-tune", "stage 1 at X; stage 2 at X/2 for the head down to X/200 for the lowest block",
			"stage 2 lasts N epochs; stage 1 stays 1 epoch",
			fmt.Sprintf("lr %g; stage 1 one epoch; stage 2 ", trainer.DefaultFineTuneLR) + floor(trainer.DefaultFineTuneMinSteps)},
		{"gradual", "every stage: the head at X, each block below it 2.6 times slower than the one above",
			"every stage N epochs", fmt.Sprintf("lr %g; every stage ", trainer.DefaultGradualLR) + floor(trainer.DefaultGradualMinSteps)},
		{"chain-thaw", "the head stage at X, every later stage at X/10",
			"every stage N epochs",
			fmt.Sprintf("lr %g; every stage ", trainer.DefaultChainThawLR) + floor(trainer.DefaultChainThawMinSteps)},
		{"full", "every block at X", "N epochs", fmt.Sprintf("lr %g; ", trainer.DefaultFullLR) + floor(trainer.DefaultFullMinSteps)},
		{"lp-ft", "the probe at X, the full stage at X/10", "each stage N epochs",
			fmt.Sprintf("lr %g; each stage ", trainer.DefaultLPFTLR) + floor(trainer.DefaultLPFTMinSteps)},
	}
}

// presetFlagsMarkdown is presetFlags as the README's table rows.
func presetFlagsMarkdown() []string {
	rows := []string{"| preset | `--lr X` | `--epochs N` | neither |", "|---|---|---|---|"}
	for _, p := range presetFlags() {
		rows = append(rows, fmt.Sprintf("| `%s` | %s | %s | %s |", p.name, p.lr, p.epochs, p.neither))
	}
	return rows
}

// writePresetFlags writes presetFlags for thaw train -h.
func writePresetFlags(w io.Writer) {
	fmt.Fprintf(w, `
What --lr X, --epochs N and --steps N do to each preset (a plan file: --lr
sets every stage's rate, --epochs or --steps every stage's length). --steps N
makes every stage of any preset exactly N steps; --epochs and --steps do not
go together. A preset evaluates a stage every epoch or every twentieth of the
stage, whichever is longer, and at its end (--eval-every N: every N steps),
and ends the stage early after %d evaluations without a better val loss
(chain-thaw: every epoch, and after %d, as DeepMoji's code), so each length
below is at most. Every preset trains and validates on the cross-entropy
with labels smoothed by %g (a plan file: "label_smoothing", none if
absent), so its val loss is that loss too; a run that keeps the base
model's head (the data's classes among its own) smooths nothing.
`, trainer.DefaultPatience, trainer.DefaultChainThawPatience, trainer.DefaultLabelSmoothing)
	for _, p := range presetFlags() {
		fmt.Fprintf(w, "  %s\n    --lr X: %s\n    --epochs N: %s\n    neither: %s\n", p.name, p.lr, p.epochs, p.neither)
	}
}

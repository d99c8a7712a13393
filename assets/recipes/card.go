package recipes

import (
	"fmt"
	"path"
	"strings"

	"thaw/assets"
	"thaw/trainer"
)

// card renders a base model's card from its meta.json, so the two never
// disagree.
func card(r recipe, meta assets.ModelMeta, m *trainer.Model[float32], data assets.DatasetInfo) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	src, _ := assets.TaskByName(meta.SourceTask)
	tgt, _ := assets.TaskByName(meta.TargetTask)

	p("# %s\n\n", meta.Name)
	p("A base model of thaw's zoo, a small %s pretrained by thaw's own trainer on the task\n", strings.ToUpper(meta.Architecture))
	p("`%s`: %s. Its transfer target is `%s`: %s.\n\n", meta.SourceTask, src.Description, meta.TargetTask, tgt.Description)
	p("## Architecture\n\n")
	p("%s\n\n", r.summary)
	p("Input shape %v, normalised per channel by `config.json`'s `normalize` (mean and\n", m.Config.InputShape)
	p("standard deviation fitted on the source training split with `trainer.FitNormalization`).\n")
	p("Classes: %s.\n\n", strings.Join(m.Config.Classes, ", "))

	p("| block | layers | parameters |\n|---|---|---|\n")
	for i, bl := range m.Blocks {
		var layers []string
		for _, l := range m.Config.Blocks[i].Layers {
			s := l.Type
			if l.Name != "" {
				s += " `" + l.Name + "`"
			}
			layers = append(layers, s)
		}
		p("| `%s` | %s | %s |\n", bl.Name, strings.Join(layers, ", "), thousands(trainer.BlockCount(bl)))
	}
	p("| total | | %s |\n\n", thousands(meta.Params))
	p("Weights are in `model.safetensors` with PyTorch names and shapes (the module paths\n")
	p("above), so they load into the equivalent `torch.nn.Sequential` with `load_state_dict`.\n\n")

	p("## Source task and accuracy\n\n")
	p("Trained on the training split of `%s` (%s samples of dataset `%s`).\n", meta.SourceTask, thousands(src.TrainCount), src.Dataset)
	p("**Source test accuracy: %.2f%%** on all %s samples of its test split, which is\n", 100*meta.SourceTestAccuracy, thousands(meta.SourceTestCount))
	p("also the held-out slice the forgetting gauge measures (`recipes.SourceTask(%q)`).\n\n", meta.Name)

	p("## Recipe\n\n")
	rc := meta.Recipe
	p("Fresh initialisation (PyTorch's per-layer defaults) from seed %d, then thaw's `%s` preset:\n", rc.Seed, rc.Preset)
	p("%d epochs, peak learning rate %g with cosine annealing, AdamW (PyTorch defaults,\n", rc.Epochs, rc.LR)
	p("weight decay 0.01), the plain cross-entropy (no label smoothing), batch\n")
	p("size %d, seed %d for batch order. No validation split: the\n", rc.BatchSize, rc.Seed)
	p("final weights are kept. Rebuild with `thaw zoo build %s` (or `recipes.Build`);\n", meta.Name)
	p("the same binary on the same machine writes the same `config.json` and `model.safetensors`.\n\n")
	p("Training time: %.1f s of wall time on the machine that built the shipped files (2 cores,\n", meta.TrainSeconds)
	p("shared with other work at the time, so the figure is an upper bound for an idle machine).\n\n")

	p("## Licence\n\n")
	p("The weights are derived from the %s data, so they carry its licence terms:\n", data.Title)
	p("**%s** (see the dataset card, [%s](../../%s), for attribution).\n", meta.Licence, path.Base(data.Card), data.Card)
	if strings.Contains(meta.Licence, "SA") {
		p("ShareAlike applies: share these weights and works derived from them under the same licence.\n")
	}
	return b.String()
}

// thousands formats n with commas, as the dataset cards do.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

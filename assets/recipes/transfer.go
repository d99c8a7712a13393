package recipes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"

	"thaw/assets"
	"thaw/store/engine"
	"thaw/trainer"
)

// Method is one way of training on the few-shot target set in the
// transfer benchmark: a thaw preset with its few-shot settings, started
// either from the base model (its head replaced) or from a fresh
// initialisation of the same architecture.
type Method struct {
	Name    string  // column title
	Preset  string  // trainer preset
	Scratch bool    // fresh initialisation instead of the pretrained weights
	Epochs  int     // the preset's epochs argument
	LR      float64 // the preset's lr argument
	// Default runs the preset as thaw train does given only a model, data,
	// shots and the seed: the job is prepared by the engine as thaw train
	// prepares it (its validation split, the shots drawn after it, the
	// head kept when the data's classes are among the model's), with the
	// preset's own rate, length, cadence and patience and
	// trainer.DefaultBatchSize (Epochs, LR and the table's batch size are
	// ignored). Its figure is the one thaw train reports: the best
	// checkpoint's accuracy on the task's test split, or its validation
	// accuracy where the task has none.
	Default bool
	// Vary, if not nil, changes the plan the preset gives before it runs
	// (a variant of a default, such as a longer stage; the job then holds
	// the changed plan instead of the preset); Note then says what it
	// changed.
	Vary func(*trainer.Plan)
	Note string
}

// Methods returns the benchmark's methods with their few-shot settings.
// The sets hold 2 to 10 samples per class, so an epoch is one to a few
// batches and the presets need far more epochs than on a full dataset.
// The settings are the same for every model; they were chosen at 5 shots
// from a few trials on seeds 1 to 4, not the table's: lr 3e-3 and 1e-2
// for gradual, 4e-3, 1e-2, 2e-2 and 4e-2 for fine-tune, and for scratch
// 1e-3, 3e-3 and 1e-2 and 240 epochs, none better than the 120 kept.
// Scratch gets as many epochs as the longest thaw preset (gradual on
// digits-cnn: 4 stages of 30). chain-thaw, lp-ft and full were not tuned:
// chain-thaw takes gradual's settings, lp-ft head's rate with fine-tune's
// length, full the scratch rate with fine-tune's length. The last column,
// defaults, is what thaw train runs given only model, data and shots.
func Methods() []Method {
	return []Method{
		{Name: "scratch", Preset: "full", Scratch: true, Epochs: 120, LR: 3e-3},
		{Name: "head", Preset: "head", Epochs: 120, LR: 1e-2},
		{Name: "fine-tune", Preset: "fine-tune", Epochs: 60, LR: 2e-2},
		{Name: "gradual", Preset: "gradual", Epochs: 30, LR: 1e-2},
		{Name: "chain-thaw", Preset: "chain-thaw", Epochs: 30, LR: 1e-2},
		{Name: "lp-ft", Preset: "lp-ft", Epochs: 60, LR: 1e-2},
		{Name: "full", Preset: "full", Epochs: 60, LR: 3e-3},
		{Name: "defaults", Preset: "gradual", Default: true},
	}
}

// DefaultMethods returns every preset run with its defaults, as thaw
// train runs it given only model, data and shots: the columns that check
// the defaults against the tuned ones.
func DefaultMethods() []Method {
	var out []Method
	for _, p := range trainer.Presets() {
		out = append(out, Method{Name: p.Name + " (default)", Preset: p.Name, Default: true})
	}
	return out
}

// TransferOptions tunes Transfer. The zero value runs the full benchmark.
type TransferOptions struct {
	// Models to benchmark; nil means every recipe's.
	Models []string
	// Shots per class; nil means 2, 5 and 10.
	Shots []int
	// Seeds is the number of repetitions, each with its own few-shot draw
	// and initialisation; zero means 5.
	Seeds int
	// FirstSeed is the first of the seeds FirstSeed, FirstSeed+1, …; zero
	// means 1001. Tune settings on other seeds than the table's.
	FirstSeed uint64
	// BatchSize of every run; zero means 16.
	BatchSize int
	// MaxEval caps the validation samples per target (a stratified draw);
	// zero means no cap.
	MaxEval int
	// Methods overrides Methods() (for tuning); nil means Methods().
	Methods []Method
	// Progress, if not nil, receives a line per finished cell.
	Progress func(string)
}

// Cell is one method's result in one row: its figure over seeds (the
// final weights' validation accuracy, or for a Default method the figure
// thaw train reports).
type Cell struct {
	Accs     []float64 // one per seed, in seed order
	Mean, SD float64   // SD is the sample standard deviation
}

// Row is one base model, target and shot count.
type Row struct {
	Model, Target string
	Shots         int
	Train, Val    int    // few-shot training samples and validation samples
	Cells         []Cell // indexed like Table.Methods
}

// Table is the transfer benchmark's result.
type Table struct {
	Methods   []Method
	Rows      []Row
	Seeds     int
	FirstSeed uint64
	BatchSize int
	Wall      time.Duration
	// Val describes each target's validation set.
	Val map[string]string
	// Reference, if not nil, holds earlier figures of some cells, in
	// percent, to hold the table against (see [Table.Drifts]);
	// ReferenceNote says where they come from.
	Reference     map[CellKey]float64
	ReferenceNote string
}

// Transfer runs the few-shot transfer benchmark: for every base model, its
// target task, every shot count and seed, it draws that many training
// samples per class from the target's training split and trains each
// method on them, then measures accuracy on the target's validation set.
// Every method of a seed sees the same samples but the Default ones.
//
// The validation set is the target's test split. uci-digits has none: a
// stratified half of it (drawn with a fixed seed) is the validation set and
// the shots are drawn from the other half. Accuracy is that of the final
// weights: nothing is selected on the validation set.
//
// A Default method is a thaw train run instead, of the same model, data,
// shots and seed, prepared by the engine as thaw train prepares it: it
// draws its own validation split and shots, keeps the best checkpoint and
// is measured as thaw train measures it (see [Method.Default]).
//
// Transfer returns ctx's error if it is cancelled, and an error if a model
// cannot be loaded or a run fails.
func Transfer(ctx context.Context, opts TransferOptions) (Table, error) {
	start := time.Now()
	if opts.Models == nil {
		opts.Models = Names()
	}
	if opts.Shots == nil {
		opts.Shots = []int{2, 5, 10}
	}
	if opts.Seeds == 0 {
		opts.Seeds = 5
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 16
	}
	if opts.FirstSeed == 0 {
		opts.FirstSeed = 1001
	}
	if opts.Methods == nil {
		opts.Methods = Methods()
	}
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	tab := Table{Methods: opts.Methods, Seeds: opts.Seeds, FirstSeed: opts.FirstSeed, BatchSize: opts.BatchSize, Val: map[string]string{}}
	// An engine without a store prepares jobs exactly as thaw train's
	// does; it records nothing.
	eng := engine.New(nil, nil)
	for _, name := range opts.Models {
		r, err := lookup(name)
		if err != nil {
			return tab, err
		}
		pool, val, desc, err := targetSets(r.target, opts.MaxEval)
		if err != nil {
			return tab, err
		}
		tab.Val[r.target] = desc
		base, err := trainer.LoadModelFS[float32](assets.Zoo(), name)
		if err != nil {
			return tab, err
		}
		for _, k := range opts.Shots {
			row := Row{Model: name, Target: r.target, Shots: k, Val: val.Len(), Cells: make([]Cell, len(opts.Methods))}
			for seed := 1; seed <= opts.Seeds; seed++ {
				s := opts.FirstSeed + uint64(seed-1)
				shots, err := pool.KShot(rand.New(rand.NewPCG(s, uint64(k))), k)
				if err != nil {
					return tab, err
				}
				row.Train = shots.Len()
				for mi, meth := range opts.Methods {
					var acc float64
					if meth.Default {
						acc, err = TrainRun(ctx, eng, name, r.target, k, s, meth)
					} else {
						acc, err = transferRun(ctx, base, meth, shots, val, s, opts.BatchSize)
					}
					if err != nil {
						return tab, fmt.Errorf("%s → %s, %d shots, seed %d, %s: %w", name, r.target, k, seed, meth.Name, err)
					}
					row.Cells[mi].Accs = append(row.Cells[mi].Accs, acc)
				}
			}
			for i := range row.Cells {
				row.Cells[i].Mean, row.Cells[i].SD = meanSD(row.Cells[i].Accs)
			}
			tab.Rows = append(tab.Rows, row)
			var parts []string
			for i, m := range opts.Methods {
				parts = append(parts, fmt.Sprintf("%s %.3f±%.3f", m.Name, row.Cells[i].Mean, row.Cells[i].SD))
			}
			opts.Progress(fmt.Sprintf("%s → %s, %d shots: %s", name, r.target, k, strings.Join(parts, ", ")))
		}
	}
	tab.Wall = time.Since(start)
	return tab, nil
}

// targetSets returns the pool the shots are drawn from and the validation
// set of a target task, with a description of the latter.
func targetSets(target string, maxEval int) (pool, val *trainer.Dataset, desc string, err error) {
	train, test, err := assets.LoadTask(target)
	if err != nil {
		return nil, nil, "", err
	}
	pool, val = train, test
	desc = fmt.Sprintf("the test split of `%s`", target)
	if test == nil {
		// A fixed stratified half, independent of the benchmark's seeds.
		if pool, val, err = train.Split(rand.New(rand.NewPCG(0, 0)), 0.5); err != nil {
			return nil, nil, "", err
		}
		desc = fmt.Sprintf("a stratified half of `%s`, which has no test split (shots drawn from the other half)", target)
	}
	if maxEval > 0 && val.Len() > maxEval {
		_, val, err = val.Split(rand.New(rand.NewPCG(0, 1)), float64(maxEval)/float64(val.Len()))
		if err != nil {
			return nil, nil, "", err
		}
		if val.Len() > maxEval {
			// Split rounds per class; drop the few extra samples.
			val = val.Subset(seq(maxEval))
		}
		desc += fmt.Sprintf(", capped by a stratified draw to %d samples", val.Len())
	}
	return pool, val, desc, nil
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// transferRun trains one method on shots and returns its accuracy on val.
func transferRun(ctx context.Context, base *trainer.Model[float32], meth Method, shots, val *trainer.Dataset, seed uint64, batch int) (float64, error) {
	rng := rand.New(rand.NewPCG(seed, initStream))
	var m *trainer.Model[float32]
	var err error
	if meth.Scratch {
		cfg := base.Config
		cfg.Classes = shots.Classes
		cfg.Blocks = append([]trainer.BlockConfig(nil), base.Config.Blocks...)
		head := cfg.Blocks[len(cfg.Blocks)-1]
		head.Layers = append([]trainer.LayerConfig(nil), head.Layers...)
		head.Layers[len(head.Layers)-1].OutFeatures = len(shots.Classes)
		cfg.Blocks[len(cfg.Blocks)-1] = head
		m, err = trainer.New[float32](&cfg, rng)
	} else {
		m, err = clone(base)
		if err == nil {
			err = m.ReplaceHead(shots.Classes, rng)
		}
	}
	if err != nil {
		return 0, err
	}
	names := m.Config.BlockNames()
	plan, err := trainer.Preset(meth.Preset, names, meth.LR, meth.Epochs)
	if err != nil {
		return 0, err
	}
	if meth.Vary != nil {
		meth.Vary(&plan)
	}
	rp, err := plan.Resolve(names)
	if err != nil {
		return 0, err
	}
	// No validation set during training: the final weights are measured,
	// so the test split selects nothing.
	if _, err := trainer.Run(ctx, trainer.Spec{
		Model: m, Plan: rp, Train: shots, Seed: seed, BatchSize: batch, ReportEvery: time.Hour,
	}, nil); err != nil {
		return 0, err
	}
	return Accuracy(m, val), nil
}

// TrainRun trains meth, a Default method, as thaw train --model model
// --data data --shots shots --seed seed --plan meth.Preset does: the job
// is prepared by eng's Prepare, the path of thaw train, and trained with
// the spec thaw train trains. It returns the figure thaw train reports:
// the accuracy of the best checkpoint (the lowest validation loss) on the
// task's test split, or that checkpoint's validation accuracy where the
// task has none. It returns the errors of preparing and training the job.
func TrainRun(ctx context.Context, eng *engine.Engine, model, data string, shots int, seed uint64, meth Method) (float64, error) {
	job := trainer.Job{Model: model, Data: trainer.DataRef{Path: data}, Shots: shots, Seed: seed}
	if err := job.SetPlan(meth.Preset, 0, 0, 0); err != nil {
		return 0, err
	}
	if meth.Vary != nil {
		base, err := eng.Model(model)
		if err != nil {
			return 0, err
		}
		plan, _, err := job.ResolvePlan(base.Model.Config.BlockNames())
		if err != nil {
			return 0, err
		}
		meth.Vary(&plan)
		job.Plan, job.Preset = plan, nil
	}
	p, err := eng.Prepare(job)
	if err != nil {
		return 0, err
	}
	res, err := trainer.Run(ctx, p.Spec(), nil)
	if err != nil {
		return 0, err
	}
	acc, n, err := eng.TestScore(p, res)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return res.BestValAcc, nil
	}
	return acc, nil
}

// clone copies a model with its weights.
func clone(m *trainer.Model[float32]) (*trainer.Model[float32], error) {
	sd, err := m.StateDict()
	if err != nil {
		return nil, err
	}
	cfg := m.Config
	c, err := trainer.New[float32](&cfg, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, err
	}
	return c, c.LoadState(sd)
}

// meanSD returns the mean and the sample standard deviation (n − 1 in the
// denominator) of x, by gonum's stat.MeanStdDev; one value has no spread,
// so its SD is 0 rather than stat's NaN.
func meanSD(x []float64) (mean, sd float64) {
	if len(x) < 2 {
		return stat.Mean(x, nil), 0
	}
	return stat.MeanStdDev(x, nil)
}

// Best returns the index of the best non-scratch method of a row by mean,
// and that of the scratch method (-1 if there is none).
func (t Table) Best(r Row) (best, scratch int) {
	best, scratch = -1, -1
	for i, m := range t.Methods {
		if m.Scratch {
			scratch = i
			continue
		}
		if best < 0 || r.Cells[i].Mean > r.Cells[best].Mean {
			best = i
		}
	}
	return best, scratch
}

// Markdown renders the table with a header stating the settings: one row
// per model and shot count, mean ± sd in percent, the best thaw preset in
// bold; then every method against scratch (see [Table.ScratchMarkdown])
// and, with a Reference, the cells held against it.
func (t Table) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Accuracy (%%, mean ± sd over %d seeds, %d to %d) after training on *k* samples per class\n",
		t.Seeds, t.FirstSeed, t.FirstSeed+uint64(t.Seeds)-1)
	p("of the target task. The tuned methods of a seed see the same samples; their figure is the\n")
	p("validation accuracy of the final weights (nothing is selected on the validation set).\n")
	p("Batch size %d; settings:\n\n", t.BatchSize)
	for _, m := range t.Methods {
		from := "the base model, head replaced"
		if m.Scratch {
			from = "a fresh initialisation of the same architecture"
		}
		switch {
		case m.Default && m.Vary != nil:
			p("- **%s**: the `%s` preset's defaults as `thaw train` runs them, but %s.\n", m.Name, m.Preset, m.Note)
		case m.Default:
			p("- **%s**: `thaw train --plan %s` given only model, data, shots and seed: %s.\n", m.Name, m.Preset, defaultsText())
		default:
			p("- **%s**: `%s` preset from %s; epochs %d, lr %g.\n", m.Name, m.Preset, from, m.Epochs, m.LR)
		}
	}
	t.writeDefaultNote(&b)
	p("\nValidation sets:\n\n")
	seen := map[string]bool{}
	for _, r := range t.Rows {
		if !seen[r.Target] {
			seen[r.Target] = true
			p("- `%s`: %s (%s samples).\n", r.Target, t.Val[r.Target], thousands(r.Val))
		}
	}
	b.WriteString("\n")
	t.writeTable(&b, nil)
	b.WriteString(t.ScratchMarkdown())
	b.WriteString(t.DriftMarkdown())
	p("\nTotal time %s on a 2-core machine.\n", t.Wall.Round(time.Second))
	return b.String()
}

// defaultsText says what a preset's defaults are, as thaw train runs them.
func defaultsText() string {
	return fmt.Sprintf("the preset's defaults (each stage one epoch or a floor of steps, whichever is longer; "+
		"the rate chosen from this table; evaluated every max(epoch, ⌈stage/%d⌉) steps, a stage stopped after "+
		"%d evaluations without a lower validation loss, chain-thaw's after %d), batch size %d",
		trainer.DefaultEvals, trainer.DefaultPatience, trainer.DefaultChainThawPatience, trainer.DefaultBatchSize)
}

// hasDefault reports whether t has a Default method.
func (t Table) hasDefault() bool {
	return slices.ContainsFunc(t.Methods, func(m Method) bool { return m.Default })
}

// writeDefaultNote says, when t has Default methods, what they run and
// which figure they report: not the tuned columns' samples nor their
// measure.
func (t Table) writeDefaultNote(b *strings.Builder) {
	if !t.hasDefault() {
		return
	}
	b.WriteString("\nA default column runs exactly what `thaw train --model M --data D --shots k --seed s` runs, through\n" +
		"the same preparation: it holds out its own validation split (20 %), draws the shots after it, keeps the\n" +
		"base model's head when the task's classes are among its own (mnist8-mlp → uci-digits) and replaces it\n" +
		"otherwise, and keeps the checkpoint with the lowest validation loss. Its figure is the one `thaw train`\n" +
		"reports: that checkpoint's accuracy on the task's test split, the same set the tuned columns are\n" +
		"measured on; for `uci-digits`, which has no test split, its accuracy on that validation split instead.\n" +
		"Its seed is the tuned columns' seed, but its shots are its own draw.\n")
}

// ScratchMarkdown renders every method against scratch, row by row: the
// mean and the sd of the per-seed differences, in accuracy points
// (negative: below scratch). It is empty when t has no scratch method.
func (t Table) ScratchMarkdown() string {
	sc := slices.IndexFunc(t.Methods, func(m Method) bool { return m.Scratch })
	if sc < 0 || len(t.Rows) == 0 {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\nEach method against scratch of the same seed (accuracy points, mean ± sd of the per-seed\n")
	p("differences; negative: below scratch):\n\n")
	p("| base model → target | k |")
	for i, m := range t.Methods {
		if i != sc {
			p(" %s − scratch |", m.Name)
		}
	}
	p("\n|---|---|")
	for range len(t.Methods) - 1 {
		p("---|")
	}
	p("\n")
	for _, r := range t.Rows {
		p("| %s → %s | %d |", r.Model, r.Target, r.Shots)
		for i, c := range r.Cells {
			if i == sc {
				continue
			}
			d := make([]float64, len(c.Accs))
			for s := range d {
				d[s] = 100 * (c.Accs[s] - r.Cells[sc].Accs[s])
			}
			mean, sd := meanSD(d)
			p(" %+.1f ± %.1f |", mean, sd)
		}
		p("\n")
	}
	return b.String()
}

// extraColumn is a column computed from a row, after the methods'.
type extraColumn struct {
	title string
	cell  func(Row) string
}

// writeTable writes the rows as a Markdown table: one column per method,
// mean ± sd in percent, the best method of a row in bold, then the extra
// columns.
func (t Table) writeTable(b *strings.Builder, extra []extraColumn) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("| base model → target | k |")
	for _, m := range t.Methods {
		p(" %s |", m.Name)
	}
	for _, e := range extra {
		p(" %s |", e.title)
	}
	p("\n|---|---|")
	for range len(t.Methods) + len(extra) {
		p("---|")
	}
	p("\n")
	for _, r := range t.Rows {
		p("| %s → %s | %d |", r.Model, r.Target, r.Shots)
		best, _ := t.Best(r)
		for i, c := range r.Cells {
			s := fmt.Sprintf("%.1f ± %.1f", 100*c.Mean, 100*c.SD)
			if i == best {
				s = "**" + s + "**"
			}
			p(" %s |", s)
		}
		for _, e := range extra {
			p(" %s |", e.cell(r))
		}
		p("\n")
	}
}

// ReplaceSection replaces the body of the section of md under heading
// (up to the next heading of its level, "## ") with body, or appends the
// section: how each evidence test writes its own section of
// assets/zoo/EVIDENCE.md and leaves the others as they are.
func ReplaceSection(md, heading, body string) string {
	sec := heading + "\n\n" + body
	i := strings.Index(md, "\n"+heading+"\n")
	if i < 0 {
		return strings.TrimRight(md, "\n") + "\n\n" + sec
	}
	rest := md[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		return md[:i+1] + sec + rest[j:]
	}
	return md[:i+1] + sec
}

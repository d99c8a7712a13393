package engine_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat"

	"thaw/assets/recipes"
	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

var sweepEvidence = flag.Bool("sweep-evidence", false, "run the sweep against the presets on every zoo pair and write its table into assets/zoo/EVIDENCE.md")

const sweepHeading = "## The freeze-point sweep against the presets"

// evidenceSeeds are the seeds of the sweep's evidence: one 5-seed sweep,
// and every preset on the same seeds.
var evidenceSeeds = []uint64{3001, 3002, 3003, 3004, 3005}

// sweepEvidenceRow is one zoo pair at one shot count.
type sweepEvidenceRow struct {
	Model, Target string
	Shots         int
	// Test says what the accuracies are measured on: the test split, or
	// the validation set where the task has none.
	Test string
	// Pick is the sweep's pick; PickAcc its runs' accuracy by seed (the
	// best checkpoint of each), TrainAcc that of thaw train
	// --freeze-below Pick, the whole default plan, by seed.
	Pick              string
	PickAcc, TrainAcc []float64
	// PickValLoss is the lowest validation loss of the pick's runs, by
	// seed: what the sweep ranks its points by.
	PickValLoss []float64
	// Best is the preset whose thaw train has the highest mean accuracy
	// on the same seeds, BestAcc its accuracies by seed.
	Best    string
	BestAcc []float64
	// CPU is the sweep's processor time, in seconds.
	CPU float64
	// Recipes are the same sweep with the first stage of each of
	// sweepRecipes in place of the default plan's, in that order.
	Recipes []recipeResult
	// Presets are every preset's thaw train on the same seeds, in the
	// order of trainer.Presets: what Best was chosen from.
	Presets []presetResult
}

// presetResult is one preset's thaw train on the evidence seeds: the
// accuracy it reports and its lowest validation loss, by seed.
type presetResult struct {
	Name         string
	Acc, ValLoss []float64
}

// sweepRecipes are the presets whose first stage the evidence also
// sweeps with, beside the default plan: each distinct first stage of a
// preset (chain-thaw's is gradual's without its discriminative factor,
// fine-tune's a one-epoch head that validates near chance at 5 shots).
var sweepRecipes = []string{"head", "lp-ft", "gradual"}

// recipeResult is a sweep with one preset's first stage as its recipe:
// its pick and the accuracy of the pick's runs, by seed.
type recipeResult struct {
	Preset string
	Pick   string
	Acc    []float64
}

// holds is the acceptance for a pick's accuracies against the best
// preset's.
func holds(pick, best []float64) bool {
	d, se := paired(pick, best)
	return d >= 0 || -d <= se
}

// paired returns the mean of a−b over the seeds and the standard error
// of those differences.
func paired(a, b []float64) (mean, se float64) {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	m, sd := stat.MeanStdDev(d, nil)
	return m, stat.StdErr(sd, float64(len(d)))
}

// holds reports the acceptance: the pick's mean accuracy is above the
// best preset's, or within one paired standard error of it.
func (r sweepEvidenceRow) holds() bool { return holds(r.PickAcc, r.BestAcc) }

func pct(x []float64) string {
	m, sd := stat.MeanStdDev(x, nil)
	return fmt.Sprintf("%.1f ± %.1f", 100*m, 100*sd)
}

// sweepEvidenceMarkdown writes the rows as EVIDENCE.md's table.
func sweepEvidenceMarkdown(rows []sweepEvidenceRow) string {
	var b strings.Builder
	b.WriteString("| model → task | shots | accuracy on | sweep pick | pick (its runs) | thaw train --freeze-below pick | best preset | best preset's thaw train | pick − best (paired SE) | holds | sweep CPU-s |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---|---:|---:|---|---:|\n")
	for _, r := range rows {
		d, se := paired(r.PickAcc, r.BestAcc)
		verdict := "yes"
		if !r.holds() {
			verdict = "**no**"
		}
		fmt.Fprintf(&b, "| %s → %s | %d | %s | %s | %s | %s | %s | %s | %+.1f (%.1f) | %s | %.1f |\n",
			r.Model, r.Target, r.Shots, r.Test, r.Pick, pct(r.PickAcc), pct(r.TrainAcc), r.Best, pct(r.BestAcc), 100*d, 100*se, verdict, r.CPU)
	}
	fmt.Fprintf(&b, "\nThe pick holds on %d of %d rows.\n", countHolds(rows, -1), len(rows))
	if len(rows) == 0 || len(rows[0].Recipes) == 0 {
		return b.String()
	}

	// The same sweeps with each preset's first stage as the recipe.
	b.WriteString("\nThe same sweeps (the same seeds, points and rule) with another recipe at every point: the first\n" +
		"stage of a preset, frozen below the point, in place of the default plan's. Each cell is the\n" +
		"pick, the mean accuracy of its runs, and its paired difference from the best preset of the\n" +
		"table above (its standard error), in bold where the acceptance does not hold.\n\n")
	cols := []string{"full (the default)"}
	for _, rc := range rows[0].Recipes {
		cols = append(cols, rc.Preset+"'s first stage")
	}
	writeHead(&b, cols...)
	cell := func(pick string, acc, best []float64) string {
		d, se := paired(acc, best)
		c := fmt.Sprintf("%s %.1f, %+.1f (%.1f)", pick, 100*stat.Mean(acc, nil), 100*d, 100*se)
		if !holds(acc, best) {
			c = "**" + c + "**"
		}
		return c
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s → %s | %d | %s |", r.Model, r.Target, r.Shots, cell(r.Pick, r.PickAcc, r.BestAcc))
		for _, rc := range r.Recipes {
			fmt.Fprintf(&b, " %s |", cell(rc.Pick, rc.Acc, r.BestAcc))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nHolds on: full (the default) %d of %d", countHolds(rows, -1), len(rows))
	for i, rc := range rows[0].Recipes {
		fmt.Fprintf(&b, ", %s's first stage %d", rc.Preset, countHolds(rows, i))
	}
	b.WriteString(".\n")
	if len(rows[0].Presets) > 0 {
		b.WriteString(presetBarMarkdown(rows))
	}
	return b.String()
}

// presetBarMarkdown holds every preset's own thaw train to the bar the
// sweep's pick is held to, the best of the presets by test accuracy on
// the same seeds, and shows each one's mean lowest validation loss, what
// the sweep ranks its points by: it measures the bar itself.
func presetBarMarkdown(rows []sweepEvidenceRow) string {
	var b strings.Builder
	b.WriteString("\nEvery preset's `thaw train` held to the same bar: its mean accuracy, its paired difference\n" +
		"from the best preset of its row (standard error), and its mean lowest validation loss, the\n" +
		"quantity the sweep ranks its points by; in bold where the acceptance would not hold for it.\n" +
		"\"Lowest validation loss\" is the preset a user would choose without the test split, by the rule\n" +
		"thaw calls best everywhere; the last column is the sweep's pick, its runs' mean lowest\n" +
		"validation loss, and its paired difference in accuracy from that preset (standard error), in\n" +
		"bold where it is more than one standard error below.\n\n")
	var cols []string
	for _, p := range rows[0].Presets {
		cols = append(cols, p.Name)
	}
	writeHead(&b, append(cols, "lowest validation loss", "sweep pick")...)
	holdsOn := make([]int, len(rows[0].Presets))
	byLoss, pickByLoss := 0, 0
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s → %s | %d |", r.Model, r.Target, r.Shots)
		low := 0
		for i, p := range r.Presets {
			d, se := paired(p.Acc, r.BestAcc)
			c := fmt.Sprintf("%.1f, %+.1f (%.1f), %.3f", 100*stat.Mean(p.Acc, nil), 100*d, 100*se, stat.Mean(p.ValLoss, nil))
			if holds(p.Acc, r.BestAcc) {
				holdsOn[i]++
			} else {
				c = "**" + c + "**"
			}
			fmt.Fprintf(&b, " %s |", c)
			if stat.Mean(p.ValLoss, nil) < stat.Mean(r.Presets[low].ValLoss, nil) {
				low = i
			}
		}
		verdict := "holds"
		if holds(r.Presets[low].Acc, r.BestAcc) {
			byLoss++
		} else {
			verdict = "**does not hold**"
		}
		// The pick against that preset, on the same bar.
		d, se := paired(r.PickAcc, r.Presets[low].Acc)
		pick := fmt.Sprintf("%s, %.3f, %+.1f (%.1f)", r.Pick, stat.Mean(r.PickValLoss, nil), 100*d, 100*se)
		if holds(r.PickAcc, r.Presets[low].Acc) {
			pickByLoss++
		} else {
			pick = "**" + pick + "**"
		}
		fmt.Fprintf(&b, " %s, %s | %s |\n", r.Presets[low].Name, verdict, pick)
	}
	fmt.Fprintf(&b, "\nHolds on (of %d rows):", len(rows))
	for i, p := range rows[0].Presets {
		fmt.Fprintf(&b, " %s %d,", p.Name, holdsOn[i])
	}
	fmt.Fprintf(&b, " the preset of the lowest validation loss %d, the sweep's pick %d.\n", byLoss, countHolds(rows, -1))
	fmt.Fprintf(&b, "Against the preset of the lowest validation loss instead, the sweep's pick holds on %d of %d.\n", pickByLoss, len(rows))
	return b.String()
}

// writeHead writes the heading and the rule of a table whose rows start
// with their pair and shots, then cols.
func writeHead(b *strings.Builder, cols ...string) {
	b.WriteString("| model → task | shots | " + strings.Join(cols, " | ") + " |\n|---|---:|" + strings.Repeat("---|", len(cols)) + "\n")
}

// countHolds counts the rows where the acceptance holds for the default
// plan's pick (recipe -1) or for recipe i's.
func countHolds(rows []sweepEvidenceRow, recipe int) int {
	n := 0
	for _, r := range rows {
		acc := r.PickAcc
		if recipe >= 0 {
			acc = r.Recipes[recipe].Acc
		}
		if holds(acc, r.BestAcc) {
			n++
		}
	}
	return n
}

// TestSweepEvidenceMarkdown: the verdict and the paired figures come from
// the seeds.
func TestSweepEvidenceMarkdown(t *testing.T) {
	rows := []sweepEvidenceRow{
		{Model: "m", Target: "t", Shots: 5, Test: "test", Pick: "fc1", PickAcc: []float64{0.80, 0.83, 0.81}, TrainAcc: []float64{0.8, 0.8, 0.8},
			Best: "gradual", BestAcc: []float64{0.81, 0.82, 0.83}, CPU: 4.2},
		{Model: "m", Target: "t", Shots: 10, Test: "test", Pick: "head", PickAcc: []float64{0.70, 0.71, 0.72}, TrainAcc: []float64{0.7, 0.7, 0.7},
			Best: "full", BestAcc: []float64{0.80, 0.82, 0.83}, CPU: 1},
	}
	rows[0].Recipes = []recipeResult{{Preset: "head", Pick: "fc1", Acc: []float64{0.70, 0.70, 0.70}}}
	rows[1].Recipes = []recipeResult{{Preset: "head", Pick: "fc1", Acc: []float64{0.81, 0.82, 0.83}}}
	rows[0].PickValLoss, rows[1].PickValLoss = []float64{0.5, 0.6, 0.7}, []float64{0.9, 0.9, 0.9}
	rows[0].Presets = []presetResult{
		{Name: "gradual", Acc: rows[0].BestAcc, ValLoss: []float64{0.7, 0.7, 0.7}},
		{Name: "full", Acc: []float64{0.75, 0.76, 0.77}, ValLoss: []float64{0.4, 0.5, 0.6}},
	}
	rows[1].Presets = []presetResult{
		{Name: "gradual", Acc: []float64{0.80, 0.81, 0.83}, ValLoss: []float64{0.3, 0.3, 0.3}},
		{Name: "full", Acc: rows[1].BestAcc, ValLoss: []float64{0.4, 0.4, 0.4}},
	}
	md := sweepEvidenceMarkdown(rows)
	for _, want := range []string{"| m → t | 5 | test | fc1 | 81.3 ± 1.5 |", "-0.7 (0.9) | yes | 4.2 |", "| **no** |",
		"The pick holds on 1 of 2 rows.", "| m → t | 5 | fc1 81.3, -0.7 (0.9) | **fc1 70.0, -12.0 (0.6)** |",
		"| m → t | 10 | **head 71.0, -10.7 (0.3)** | fc1 82.0, +0.3 (0.3) |", "Holds on: full (the default) 1 of 2, head's first stage 1.",
		"| m → t | 5 | 82.0, +0.0 (0.0), 0.700 | **76.0, -6.0 (0.0), 0.500** | full, **does not hold** | fc1, 0.600, +5.3 (0.9) |",
		"| m → t | 10 | 81.3, -0.3 (0.3), 0.300 | 81.7, +0.0 (0.0), 0.400 | gradual, holds | **head, 0.900, -10.3 (0.3)** |",
		"Holds on (of 2 rows): gradual 2, full 1, the preset of the lowest validation loss 1, the sweep's pick 1.",
		"Against the preset of the lowest validation loss instead, the sweep's pick holds on 1 of 2.",
		"\n| model → task | shots | full (the default) | head's first stage |\n|---|---:|---|---|\n| m → t | 5 |",
		"\n| model → task | shots | gradual | full | lowest validation loss | sweep pick |\n|---|---:|---|---|---|---|\n| m → t | 5 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestSweepEvidence is issue 20's acceptance on the zoo: thaw sweep (the
// default plan, freeze points only) on every zoo pair at 5 and 10 shots,
// seeds 3001 to 3005 as one 5-seed sweep, against every preset's thaw
// train with its defaults on the same seeds; the pick's accuracy is above
// the best preset's or within one paired standard error. It writes the
// table into assets/zoo/EVIDENCE.md, with a second one: the same sweeps
// with the first stage of each of sweepRecipes as the recipe, which says
// whether another one-stage recipe would hold where the default does not.
func TestSweepEvidence(t *testing.T) {
	if !*sweepEvidence {
		t.Skip("tens of minutes; run with -sweep-evidence")
	}
	ctx := context.Background()
	var rows []sweepEvidenceRow
	for _, model := range recipes.Names() {
		for _, shots := range []int{5, 10} {
			r := evidenceRow(t, ctx, model, recipes.TargetTask(model), shots)
			t.Logf("%s → %s, %d shots: pick %s %s, best %s %s, %.1f CPU-s", r.Model, r.Target, r.Shots, r.Pick, pct(r.PickAcc), r.Best, pct(r.BestAcc), r.CPU)
			if !r.holds() {
				d, se := paired(r.PickAcc, r.BestAcc)
				t.Errorf("%s → %s at %d shots: the pick %s is %.1f points below %s, more than one paired SE (%.1f)", r.Model, r.Target, r.Shots, r.Pick, -100*d, r.Best, 100*se)
			}
			rows = append(rows, r)
		}
	}
	body := "Written by `go test -run TestSweepEvidence ./store/engine -sweep-evidence -timeout 2h`.\n\n" +
		"`thaw sweep --model M --data D --shots K --seed-list 3001,3002,3003,3004,3005` (the default plan,\n" +
		"full, at every freeze point: each point fine-tunes the blocks from it up in one stage) against every preset's `thaw train` with its defaults on the\n" +
		"same seeds. Accuracies are mean ± sd over the seeds, of the checkpoint with the lowest validation\n" +
		"loss, on the test split (the validation set for a task without one). The sweep's pick is taken\n" +
		"by the one-standard-error rule before any test accuracy is seen; \"pick − best\" is paired over\n" +
		"the seeds, and the acceptance holds when the pick is above the best preset or within one\n" +
		"paired standard error of it.\n\n" + sweepEvidenceMarkdown(rows)
	path := filepath.Join("..", "..", "assets", "zoo", "EVIDENCE.md")
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(recipes.ReplaceSection(string(md), sweepHeading, body)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// evidenceRow runs one pair at one shot count.
func evidenceRow(t *testing.T, ctx context.Context, model, target string, shots int) sweepEvidenceRow {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := engine.New(st, nil)
	job := trainer.Job{Model: model, Data: trainer.DataRef{Path: target}, Shots: shots}
	if err := job.SetPlan(engine.DefaultSweepPlan, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	sw, err := e.NewSweep(ctx, engine.SweepSpec{Job: job, Seeds: evidenceSeeds, PlanRef: engine.DefaultSweepPlan})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := e.RunSweep(ctx, sw.ID, engine.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := tb.Groups[0]
	row := g.Rows[g.Pick.Index]
	r := sweepEvidenceRow{Model: model, Target: target, Shots: shots, Pick: row.Point, PickValLoss: row.ValLoss, CPU: tb.CPU.Seconds(), Test: "test"}
	if g.Test != nil {
		r.PickAcc = g.Test.Acc
	} else {
		r.Test, r.PickAcc = "validation", row.ValAcc
	}
	// The same sweep with each recipe: one sweep crossed with the presets.
	rsw, err := e.NewSweep(ctx, engine.SweepSpec{Job: job, Seeds: evidenceSeeds, Presets: sweepRecipes})
	if err != nil {
		t.Fatal(err)
	}
	rtb, err := e.RunSweep(ctx, rsw.ID, engine.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range rtb.Groups {
		rr := recipeResult{Preset: rg.Preset, Pick: rg.Rows[rg.Pick.Index].Point}
		if rg.Test != nil {
			rr.Acc = rg.Test.Acc
		} else {
			rr.Acc = rg.Rows[rg.Pick.Index].ValAcc
		}
		r.Recipes = append(r.Recipes, rr)
	}
	// thaw train of one job on every seed: the accuracy that thaw train
	// reports (test, else the best checkpoint's validation accuracy).
	train := func(j trainer.Job) (accs, losses []float64) {
		for _, seed := range evidenceSeeds {
			j.Seed = seed
			l, err := e.Start(ctx, j, engine.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := l.Wait()
			if err != nil {
				t.Fatal(err)
			}
			acc, n, err := e.TestScore(l.Prepared, res)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				acc = res.BestValAcc
			}
			accs = append(accs, acc)
			losses = append(losses, res.BestValLoss)
		}
		return accs, losses
	}
	pickJob := job
	pickJob.FreezeBelow = r.Pick
	r.TrainAcc, _ = train(pickJob)
	best := math.Inf(-1)
	for _, p := range trainer.Presets() {
		pj := job
		if err := pj.SetPlan(p.Name, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		accs, losses := train(pj)
		r.Presets = append(r.Presets, presetResult{Name: p.Name, Acc: accs, ValLoss: losses})
		if m := stat.Mean(accs, nil); m > best {
			best, r.Best, r.BestAcc = m, p.Name, accs
		}
	}
	return r
}

package recipes

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// transfer runs the full benchmark, minutes long:
//
//	go test -run TestTransferTable ./assets/recipes -transfer -timeout 30m
//
// It writes the table to assets/zoo/EVIDENCE.md.
var transfer = flag.Bool("transfer", false, "run the transfer benchmark and write assets/zoo/EVIDENCE.md")

// defaults checks the defaults against the tuned settings, minutes long:
//
//	go test -run TestDefaultsTable ./assets/recipes -defaults -timeout 30m
//
// It writes two sections of assets/zoo/EVIDENCE.md after the table.
var defaults = flag.Bool("defaults", false, "check the defaults against the tuned settings and write their sections of assets/zoo/EVIDENCE.md")

// minLead is what the issue asks of the best thaw preset over scratch at 5
// shots per class, in accuracy points.
var minLead = map[string]float64{"digits-cnn": 4, "mnist8-mlp": 4, "letters-mlp": 5}

func TestTransferTable(t *testing.T) {
	if !*transfer {
		t.Skip("minutes long; run with -transfer")
	}
	tab, err := Transfer(context.Background(), TransferOptions{Progress: func(s string) { t.Log(s) }})
	if err != nil {
		t.Fatal(err)
	}
	tab.Reference, tab.ReferenceNote = previousDefaults, previousDefaultsNote
	md := "# Evidence: few-shot transfer from the zoo\n\n" +
		"Written by `go test -run TestTransferTable ./assets/recipes -transfer -timeout 30m`.\n\n" + tab.Markdown()
	// The sections after the table are TestDefaultsTable's: kept.
	old := readEvidence(t)
	if i := strings.Index(old, "\n## "); i >= 0 {
		md += old[i:]
	}
	writeEvidence(t, md)
	t.Log("\n" + tab.Markdown())
	reportMisses(t, tab)
	for _, r := range tab.Rows {
		if r.Shots != 5 {
			continue
		}
		best, scratch := tab.Best(r)
		lead := 100 * (r.Cells[best].Mean - r.Cells[scratch].Mean)
		if lead < minLead[r.Model] {
			t.Errorf("%s → %s at 5 shots: best preset %s leads scratch by %.1f points, want at least %v",
				r.Model, r.Target, tab.Methods[best].Name, lead, minLead[r.Model])
		}
	}
}

// TestTransferSmoke runs one cheap cell of the benchmark so the code path
// is covered by the ordinary tests.
func TestTransferSmoke(t *testing.T) {
	tab, err := Transfer(context.Background(), TransferOptions{
		Models: []string{"letters-mlp"}, Shots: []int{2}, Seeds: 2, MaxEval: 300,
		Methods: []Method{
			{Name: "scratch", Preset: "full", Scratch: true, Epochs: 5, LR: 3e-3},
			{Name: "head", Preset: "head", Epochs: 5, LR: 1e-2},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tab.Rows), 1; got != want {
		t.Fatalf("got %d rows, want %d", got, want)
	}
	r := tab.Rows[0]
	if got, want := r.Train, 2*13; got != want {
		t.Errorf("got %d training samples, want %d", got, want)
	}
	if r.Val > 300 {
		t.Errorf("validation set has %d samples, cap is 300", r.Val)
	}
	for i, c := range r.Cells {
		if len(c.Accs) != 2 || !(c.Mean > 0 && c.Mean <= 1) {
			t.Errorf("%s: accuracies %v, mean %v", tab.Methods[i].Name, c.Accs, c.Mean)
		}
	}
	if md := tab.Markdown(); len(md) == 0 {
		t.Error("empty markdown")
	}
}

const (
	defaultsHeading = "## Defaults against the tuned settings"
	probeHeading    = "## How far a linear probe goes"
)

// TestDefaultsTable runs every preset with its defaults, as thaw train
// runs it, beside scratch and the tuned columns at 5 and 10 shots, on
// seeds other than those the defaults were chosen on (1 to 4), and the
// head preset's defaults varied one way each on digits-cnn, where the
// linear probe stays furthest below the best tuned preset; it writes both
// as sections of EVIDENCE.md and fails if the gradual default is more than
// 2 points below tuned gradual or a default more than 2 points below its
// earlier figure (previousDefaults), naming each such cell.
func TestDefaultsTable(t *testing.T) {
	if !*defaults {
		t.Skip("minutes long; run with -defaults")
	}
	ctx := context.Background()
	log := func(s string) { t.Log(s) }
	tab, err := Transfer(ctx, TransferOptions{Shots: []int{5, 10}, Methods: DefaultsMethods(), Progress: log})
	if err != nil {
		t.Fatal(err)
	}
	probe, err := Transfer(ctx, TransferOptions{Models: []string{"digits-cnn"}, Shots: []int{5, 10}, Methods: ProbeMethods(), Progress: log})
	if err != nil {
		t.Fatal(err)
	}
	tab.Reference, tab.ReferenceNote = previousDefaults, previousDefaultsNote
	probe.Reference, probe.ReferenceNote = previousDefaults, previousDefaultsNote
	cmd := "Written by `go test -run TestDefaultsTable ./assets/recipes -defaults -timeout 30m`\n" +
		"(also `thaw bench transfer --defaults --shots 5,10` and `thaw bench transfer --probe`).\n\n"
	md := readEvidence(t)
	md = ReplaceSection(md, defaultsHeading, cmd+
		"The defaults were chosen from tuned settings measured on seeds 1 to 4.\n\n"+tab.DefaultsMarkdown())
	md = ReplaceSection(md, probeHeading, cmd+
		probeIntro(probe)+
		"Only the head trains, on the body's frozen features: the same defaults with a longer stage,\n"+
		"a higher rate or a stronger weight decay, beside scratch and the tuned head and fine-tune columns.\n\n"+
		probe.ProbeMarkdown())
	writeEvidence(t, md)
	t.Log("\n" + tab.DefaultsMarkdown() + "\n" + probe.ProbeMarkdown())
	reportMisses(t, tab)
	for _, r := range tab.Rows {
		if g, _, _, ok := tab.DefaultGaps(r); !ok || g < -2 {
			t.Errorf("%s → %s at %d shots: the gradual default is %+.1f points from tuned gradual, want within 2 (columns found: %v)",
				r.Model, r.Target, r.Shots, g, ok)
		}
	}
}

// probeIntro says where the default head of a table run with
// ProbeMethods stands against scratch and the tuned fine-tune, from its
// cells: the reason the section exists, stated only as far as it holds.
func probeIntro(tab Table) string {
	h, sc, ft := tab.column("head (default)"), tab.column("scratch"), tab.column("fine-tune")
	if h < 0 || sc < 0 || ft < 0 || len(tab.Rows) == 0 {
		return ""
	}
	below, worst := true, 0.0
	for _, r := range tab.Rows {
		below = below && r.Cells[h].Mean < r.Cells[sc].Mean
		worst = min(worst, 100*(r.Cells[h].Mean-r.Cells[ft].Mean))
	}
	where := "is not below scratch in every row"
	if below {
		where = "stays below scratch in every row"
	}
	return fmt.Sprintf("On %s the default head %s, and up to %.1f points below tuned fine-tune.\n", tab.Rows[0].Model, where, -worst)
}

func evidencePath() string { return filepath.Join("..", "zoo", "EVIDENCE.md") }

func readEvidence(t *testing.T) string {
	b, err := os.ReadFile(evidencePath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readmePath() string { return filepath.Join("..", "..", "README.md") }

// writeEvidence writes EVIDENCE.md and copies it into the README's
// Evidence section, which quotes it.
func writeEvidence(t *testing.T, md string) {
	if err := os.WriteFile(evidencePath(), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(readmePath())
	if err != nil {
		t.Fatal(err)
	}
	out, err := quoteEvidence(string(readme), md)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readmePath(), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	readmeEvidence = "\n## Evidence\n"
	readmeIntroEnd = "copied from it.\n\n"
)

// quoteEvidence replaces the README's copy of EVIDENCE.md, everything in
// its Evidence section after the introduction (which ends "copied from
// it."), with evidence less its title and its first paragraph (the
// command, which the introduction gives), its sections one level down.
func quoteEvidence(readme, evidence string) (string, error) {
	i := strings.Index(readme, readmeEvidence)
	if i < 0 {
		return "", fmt.Errorf("README has no %q section", strings.TrimSpace(readmeEvidence))
	}
	j := strings.Index(readme[i:], readmeIntroEnd)
	if j < 0 {
		return "", fmt.Errorf("README's Evidence section has no introduction ending %q", strings.TrimSpace(readmeIntroEnd))
	}
	start := i + j + len(readmeIntroEnd)
	end := len(readme)
	if k := strings.Index(readme[start:], "\n## "); k >= 0 {
		end = start + k + 1
	}
	paras := strings.SplitN(evidence, "\n\n", 3)
	if len(paras) < 3 {
		return "", errors.New("EVIDENCE.md has no body after its title and command")
	}
	body := strings.ReplaceAll(paras[2], "\n## ", "\n### ")
	if end < len(readme) {
		body = strings.TrimRight(body, "\n") + "\n\n"
	}
	return readme[:start] + body + readme[end:], nil
}

// quote copies EVIDENCE.md into the README, as the generators do when
// they write it:
//
//	go test -run TestReadmeQuotesEvidence ./assets/recipes -quote
var quote = flag.Bool("quote", false, "copy assets/zoo/EVIDENCE.md into the README's Evidence section")

// TestReadmeQuotesEvidence: the README's Evidence section is EVIDENCE.md
// as the tests wrote it, so that its tables say what the generators said.
func TestReadmeQuotesEvidence(t *testing.T) {
	evidence := readEvidence(t)
	if *quote {
		writeEvidence(t, evidence)
		return
	}
	readme, err := os.ReadFile(readmePath())
	if err != nil {
		t.Fatal(err)
	}
	want, err := quoteEvidence(string(readme), evidence)
	if err != nil {
		t.Fatal(err)
	}
	if string(readme) != want {
		t.Error("the README's Evidence section is not EVIDENCE.md's; copy it with -quote")
	}
}

func TestQuoteEvidence(t *testing.T) {
	evidence := "# E\n\nWritten by x.\n\ntable\n\n## A\n\na\n"
	for _, c := range []struct{ name, readme, want string }{
		{"last section", "# R\n\n## Evidence\n\nIntro, copied from it.\n\nold\n\n### A\n\nold a\n",
			"# R\n\n## Evidence\n\nIntro, copied from it.\n\ntable\n\n### A\n\na\n"},
		{"a section after", "## Evidence\n\ncopied from it.\n\nold\n\n## Next\n\nn\n",
			"## Evidence\n\ncopied from it.\n\ntable\n\n### A\n\na\n\n## Next\n\nn\n"},
	} {
		got, err := quoteEvidence("\n"+c.readme, evidence)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != "\n"+c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, "\n"+c.want)
		}
	}
	if _, err := quoteEvidence("# R\n", evidence); err == nil {
		t.Error("a README without an Evidence section: no error")
	}
}

func TestReplaceSection(t *testing.T) {
	md := "# E\n\ntable\n\n## A\n\nold a\n\n## B\n\nold b\n"
	if got, want := ReplaceSection(md, "## A", "new a\n"), "# E\n\ntable\n\n## A\n\nnew a\n\n## B\n\nold b\n"; got != want {
		t.Errorf("replacing a middle section: got %q, want %q", got, want)
	}
	if got, want := ReplaceSection(md, "## B", "new b\n"), "# E\n\ntable\n\n## A\n\nold a\n\n## B\n\nnew b\n"; got != want {
		t.Errorf("replacing the last section: got %q, want %q", got, want)
	}
	if got, want := ReplaceSection(md, "## C", "c\n"), md+"\n## C\n\nc\n"; got != want {
		t.Errorf("appending a section: got %q, want %q", got, want)
	}
}

// TestDefaultsMarkdown: the gaps and the summary are computed from the
// cells, the worst preset named.
func TestDefaultsMarkdown(t *testing.T) {
	tab := Table{Methods: DefaultsMethods(), Seeds: 1, FirstSeed: 1001, BatchSize: 16}
	means := map[string]float64{
		"scratch": 0.75, "head": 0.70, "fine-tune": 0.85, "gradual": 0.80, "chain-thaw": 0.78, "lp-ft": 0.79, "full": 0.81,
		"head (default)": 0.71, "fine-tune (default)": 0.84, "gradual (default)": 0.79,
		"chain-thaw (default)": 0.81, "full (default)": 0.8, "lp-ft (default)": 0.815,
	}
	r := Row{Model: "digits-cnn", Target: "digits-5to9", Shots: 5}
	for _, m := range tab.Methods {
		mean, ok := means[m.Name]
		if !ok {
			t.Fatalf("no mean for column %q", m.Name)
		}
		r.Cells = append(r.Cells, Cell{Accs: []float64{mean}, Mean: mean})
	}
	tab.Rows = []Row{r}
	g, own, best, ok := tab.DefaultGaps(r)
	if !ok {
		t.Fatal("columns not found")
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(g, -1) {
		t.Errorf("gradual gap %v, want -1", g)
	}
	if w := worst(own); w.Preset != "fine-tune" || !near(w.Points, -1) {
		t.Errorf("worst against its own tuned column %+v, want fine-tune -1", w)
	}
	if w := worst(best); w.Preset != "head" || !near(w.Points, -14) {
		t.Errorf("worst against the best tuned %+v, want head -14", w)
	}
	md := tab.DefaultsMarkdown()
	for _, want := range []string{"| -1.0 | -1.0 (fine-tune) | -14.0 (head) |", "within 1.0 points of tuned gradual",
		"all are within 4.0 points but head on digits-cnn at 5 shots (-14.0)."} {
		if !strings.Contains(md, want) {
			t.Errorf("the defaults section lacks %q:\n%s", want, md)
		}
	}
}

// TestMeanSD checks the evidence tables' mean ± sd against values worked by
// hand. The tolerance, 1e-15 relative, is a few float64 roundings: stat's
// two-pass, compensated variance and the hand figures agree to that.
func TestMeanSD(t *testing.T) {
	for _, c := range []struct {
		name             string
		x                []float64
		wantMean, wantSD float64
	}{
		{"four", []float64{1, 2, 3, 4}, 2.5, math.Sqrt(5.0 / 3)}, // Σ(x−2.5)² = 5, over n−1 = 3
		{"two", []float64{0.9, 0.7}, 0.8, math.Sqrt(0.02)},       // Σ(x−0.8)² = 0.02, over 1
		{"equal", []float64{0.5, 0.5, 0.5}, 0.5, 0},
		{"one", []float64{0.93}, 0.93, 0}, // no spread, not stat's NaN
	} {
		mean, sd := meanSD(c.x)
		if math.Abs(mean-c.wantMean) > 1e-15*c.wantMean || math.Abs(sd-c.wantSD) > 1e-15*max(c.wantSD, 1) {
			t.Errorf("%s: meanSD(%v) = %v, %v; want %v, %v", c.name, c.x, mean, sd, c.wantMean, c.wantSD)
		}
	}
}

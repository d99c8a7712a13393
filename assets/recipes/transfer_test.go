package recipes

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// transfer runs the full benchmark, minutes long:
//
//	go test -run TestTransferTable ./assets/recipes -transfer -timeout 30m
//
// It writes the table to assets/zoo/EVIDENCE.md.
var transfer = flag.Bool("transfer", false, "run the transfer benchmark and write assets/zoo/EVIDENCE.md")

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
	md := "# Evidence: few-shot transfer from the zoo\n\n" +
		"Written by `go test -run TestTransferTable ./assets/recipes -transfer -timeout 30m`.\n\n" + tab.Markdown()
	if err := os.WriteFile(filepath.Join("..", "zoo", "EVIDENCE.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + tab.Markdown())
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

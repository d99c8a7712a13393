package engine_test

import (
	"context"
	"testing"

	"thaw/assets"
	"thaw/store/engine"
	"thaw/trainer"
)

// TestGaugeKeptHead: when the head is kept (uci-digits has mnist8-mlp's
// classes) the forgetting gauge measures the model as trained, head
// included: its final value is the accuracy of the saved fine-tuned model
// on the source task's test set, and it moves as the head trains.
func TestGaugeKeptHead(t *testing.T) {
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 5, Seed: 3}
	if err := job.SetPlan("head", 0.05, 0, 30); err != nil {
		t.Fatal(err)
	}
	cat := assets.NewCatalog()
	p, err := engine.New(nil, cat).Prepare(job)
	if err != nil {
		t.Fatal(err)
	}
	if p.HeadReplaced || p.Source == nil || p.SourceHead != nil {
		t.Fatalf("head replaced %v, source %v, source head %v: want the head kept and gauged as it trains", p.HeadReplaced, p.Source != nil, p.SourceHead != nil)
	}
	res, err := trainer.Run(context.Background(), p.Spec(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := trainer.SaveModel(dir, p.Model); err != nil {
		t.Fatal(err)
	}
	saved, err := trainer.LoadModel[float32](dir)
	if err != nil {
		t.Fatal(err)
	}
	base, err := cat.Model("mnist8-mlp")
	if err != nil {
		t.Fatal(err)
	}
	src, err := cat.Source(base)
	if err != nil {
		t.Fatal(err)
	}
	_, want := trainer.Evaluate(saved, src)
	if res.SourceAccAfter != want {
		t.Errorf("gauge after %v, the saved model scores %v on %s", res.SourceAccAfter, want, src.Name)
	}
	if res.SourceAccAfter == res.SourceAccBefore {
		t.Errorf("gauge %v before and after: the trained head did not count", res.SourceAccBefore)
	}
}

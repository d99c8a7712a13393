package ui

import (
	"reflect"
	"strings"
	"testing"

	"thaw/trainer"
)

// A stage's one-line form reads back as the stage, every key included;
// a bad value is refused naming its key.
func TestStageLineRoundTrip(t *testing.T) {
	st := trainer.Stage{Train: []string{"fc1", "head"}, Epochs: 2, MinSteps: 100, LR: 0.003,
		Schedule: &trainer.Schedule{Kind: trainer.ScheduleCosine}, LRFactor: 2.6, Evals: 20, Patience: 3,
		LabelSmoothing: 0.1, Name: "top"}
	line := formatStage(st)
	got, err := parseStage(line, trainer.Stage{})
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("%q reads back as %+v, want %+v", line, got, st)
	}
	if got, err := parseStage("smoothing=0", st); err != nil || got.LabelSmoothing != 0 {
		t.Errorf("smoothing=0: %+v, %v; want the plan's (0)", got.LabelSmoothing, err)
	}
	for _, bad := range []string{"smoothing=1", "smoothing=-0.1", "smoothing=x"} {
		if _, err := parseStage(bad, st); err == nil || !strings.Contains(err.Error(), "smoothing") {
			t.Errorf("%s: %v; want an error naming smoothing", bad, err)
		}
	}
}

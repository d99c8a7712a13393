package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFigureTitle(t *testing.T) {
	a := Run{ID: "01a", Name: "gradual-1", Model: "digits-cnn", Data: "digits-5to9", Plan: "gradual"}
	b := Run{ID: "01b", Name: "full-1", Model: "digits-cnn", Data: "digits-5to9", Plan: "full"}
	tests := []struct {
		name string
		runs []Run
		want string
	}{
		{"one run", []Run{a}, "gradual-1 · digits-cnn → digits-5to9 · gradual"},
		{"shared model and data", []Run{a, b}, "gradual-1, full-1 · digits-cnn → digits-5to9"},
		{"many", []Run{a, b, a, b, a}, "gradual-1, full-1, gradual-1, +2 more · digits-cnn → digits-5to9"},
		{"model only", []Run{{Name: "x", Model: "m"}}, "x · m"},
		{"nothing known", []Run{{Name: "x"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FigureTitle(tt.runs); got != tt.want {
				t.Errorf("FigureTitle = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWriteFileTitle: a figure of a run that knows its model, data and
// plan carries them in its title; an explicit title wins.
func TestWriteFileTitle(t *testing.T) {
	r := synthRun(1, "gradual-1", 2000, 100, gradualStages(2000))
	r.Model, r.Data, r.Plan = "digits-cnn", "digits-5to9", "gradual"
	for _, c := range []struct{ title, want string }{
		{"", "gradual-1 · digits-cnn → digits-5to9 · gradual"},
		{"my figure", "my figure"},
	} {
		path := filepath.Join(t.TempDir(), "fig.svg")
		o := DefaultOptions()
		o.Title = c.title
		if _, err := WriteFile(path, LearningCurves, []Run{r}, o); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.want) {
			t.Errorf("title %q: the SVG lacks %q", c.title, c.want)
		}
	}
}

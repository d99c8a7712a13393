package assets

import (
	"io/fs"
	"path"
	"slices"
	"testing"
	"testing/fstest"
)

// TestModels checks that every zoo folder lists with its meta.json and
// card, and that each model's source and target are catalogued tasks.
func TestModels(t *testing.T) {
	ms, err := Models()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"digits-cnn", "letters-mlp", "mnist8-mlp"}
	if len(ms) != len(want) {
		t.Fatalf("got %d models, want %v", len(ms), want)
	}
	for i, m := range ms {
		if m.Name != want[i] {
			t.Errorf("model %d is %q, want %q", i, m.Name, want[i])
		}
		if m.Meta.Name != m.Name {
			t.Errorf("%s: meta.json names %q", m.Name, m.Meta.Name)
		}
		for _, f := range []string{ConfigFile, WeightsFile, MetaFile, CardFile} {
			if _, err := fs.Stat(Zoo(), path.Join(m.Name, f)); err != nil {
				t.Errorf("%s: %v", m.Name, err)
			}
		}
		if _, err := fs.Stat(FS, m.Card); err != nil {
			t.Errorf("%s: card: %v", m.Name, err)
		}
		for _, task := range []string{m.Meta.SourceTask, m.Meta.TargetTask} {
			if _, ok := TaskByName(task); !ok {
				t.Errorf("%s: task %q is not catalogued", m.Name, task)
			}
		}
		if m.Meta.Licence == "" || m.Meta.Params <= 0 || !(m.Meta.SourceTestAccuracy > 0) {
			t.Errorf("%s: incomplete meta.json: %+v", m.Name, m.Meta)
		}
		if got, ok, err := Model(m.Name); err != nil || !ok || got.Name != m.Name {
			t.Errorf("Model(%q) = %v, %v, %v", m.Name, got.Name, ok, err)
		}
	}
}

func TestZooModels(t *testing.T) {
	fsys := fstest.MapFS{
		"README.md":               {Data: []byte("# zoo\n")},
		"mlp-b/config.json":       {Data: []byte("{}")},
		"mlp-a/config.json":       {Data: []byte("{}")},
		"mlp-a/model.safetensors": {Data: []byte{}},
		"notes/readme.txt":        {Data: []byte("not a model")},
	}
	if got, want := ZooModels(fsys), []string{"mlp-a", "mlp-b"}; !slices.Equal(got, want) {
		t.Errorf("ZooModels = %q, want %q", got, want)
	}
	if got := ZooModels(nil); got != nil {
		t.Errorf("ZooModels(nil) = %q, want none", got)
	}
	if got, want := ZooModels(Zoo()), []string{"digits-cnn", "letters-mlp", "mnist8-mlp"}; !slices.Equal(got, want) {
		t.Errorf("ZooModels(Zoo()) = %q, want %q", got, want)
	}
}

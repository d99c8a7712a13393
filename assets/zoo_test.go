package assets

import (
	"slices"
	"testing"
	"testing/fstest"
)

func TestZooModels(t *testing.T) {
	fsys := fstest.MapFS{
		"data/x.gz":                   {Data: []byte{}},
		"zoo/README.md":               {Data: []byte("# zoo\n")},
		"zoo/mlp-b/config.json":       {Data: []byte("{}")},
		"zoo/mlp-a/config.json":       {Data: []byte("{}")},
		"zoo/mlp-a/model.safetensors": {Data: []byte{}},
		"zoo/notes/readme.txt":        {Data: []byte("not a model")},
	}
	got := ZooModels(zooOf(fsys))
	if want := []string{"mlp-a", "mlp-b"}; !slices.Equal(got, want) {
		t.Errorf("ZooModels = %q, want %q", got, want)
	}
	if z := zooOf(fstest.MapFS{"data/x.gz": {}}); z != nil {
		t.Errorf("zooOf without a zoo folder = %v, want nil", z)
	}
	if got := ZooModels(nil); got != nil {
		t.Errorf("ZooModels(nil) = %q, want none", got)
	}
}

package recipes

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
)

// update rewrites the shipped zoo (assets/zoo/<name>/) from the recipes:
// go test ./assets/recipes -run TestUpdateZoo -update [-model NAME].
var (
	update = flag.Bool("update", false, "rebuild the shipped zoo models from their recipes")
	only   = flag.String("model", "", "with -update: rebuild only this model")
)

func TestUpdateZoo(t *testing.T) {
	if !*update {
		t.Skip("rebuilds the zoo; run with -update")
	}
	for _, name := range Names() {
		if *only != "" && name != *only {
			continue
		}
		err := Build(context.Background(), name, filepath.Join("..", "zoo", name), func(s string) { t.Log(s) })
		if err != nil {
			t.Fatal(err)
		}
	}
}

package assets

import (
	"io/fs"
	"slices"
)

// Zoo returns the embedded model zoo as an fs.FS rooted at assets/zoo, with
// one folder per base model (zoo/<name>/config.json and model.safetensors),
// or nil when the zoo is not embedded. It reads FS, so the zoo appears as
// soon as the embed directive in assets.go includes it.
func Zoo() fs.FS { return zooOf(FS) }

// zooOf is Zoo over any file system rooted at assets/.
func zooOf(fsys fs.FS) fs.FS {
	if st, err := fs.Stat(fsys, "zoo"); err != nil || !st.IsDir() {
		return nil
	}
	sub, err := fs.Sub(fsys, "zoo")
	if err != nil {
		return nil
	}
	return sub
}

// ZooModels lists the model names of a zoo such as Zoo returns: the
// folders that hold a config.json, sorted. A nil zoo has no models.
func ZooModels(zoo fs.FS) []string {
	if zoo == nil {
		return nil
	}
	entries, err := fs.ReadDir(zoo, ".")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := fs.Stat(zoo, e.Name()+"/config.json"); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

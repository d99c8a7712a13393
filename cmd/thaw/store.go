package main

import (
	"flag"

	"thaw/store"
)

// storeFlag registers --store on a command's flags.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "the run store `dir` (default $THAW_STORE, else $XDG_DATA_HOME/thaw, else ~/.local/share/thaw)")
}

// openStore opens the store in dir, or in the default place when dir is
// empty.
func openStore(dir string) (*store.Store, error) {
	return openStoreWith(dir, store.Open)
}

// openStoreForReading is openStore for a command that only reads: a store
// it cannot write is opened read-only (see store.OpenForReading).
func openStoreForReading(dir string) (*store.Store, error) {
	return openStoreWith(dir, store.OpenForReading)
}

func openStoreWith(dir string, open func(string, ...store.Option) (*store.Store, error)) (*store.Store, error) {
	if dir == "" {
		d, err := store.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return open(dir)
}

package main

import (
	"flag"
	"os"

	"thaw/store"
)

// storeRef is where a command's store is: --store and --checkpoints.
type storeRef struct {
	addr        string // a folder (SQLite) or a postgres:// URL; empty means the default
	checkpoints string // the checkpoint root; empty means $THAW_CHECKPOINTS for PostgreSQL, the store's folder for SQLite
}

// storeFlag registers --store and --checkpoints on a command's flags.
func storeFlag(fs *flag.FlagSet) *storeRef {
	var r storeRef
	fs.StringVar(&r.addr, "store", "", "the run store: a `dir` for SQLite, or a postgres:// URL shared by several machines (default $THAW_STORE, else $XDG_DATA_HOME/thaw, else ~/.local/share/thaw)")
	fs.StringVar(&r.checkpoints, "checkpoints", "", "the `dir` that holds the checkpoint files, which every machine of a shared store reaches; required with PostgreSQL (default $THAW_CHECKPOINTS there; an SQLite store's own folder)")
	return &r
}

// openStore opens the store at ref, or in the default place when ref
// names none.
func openStore(ref storeRef) (*store.Store, error) {
	return openStoreWith(ref, store.Open)
}

// openStoreForReading is openStore for a command that only reads: a store
// it cannot write is opened read-only (see store.OpenForReading).
func openStoreForReading(ref storeRef) (*store.Store, error) {
	return openStoreWith(ref, store.OpenForReading)
}

func openStoreWith(ref storeRef, open func(string, ...store.Option) (*store.Store, error)) (*store.Store, error) {
	addr := ref.addr
	if addr == "" {
		d, err := store.DefaultDir()
		if err != nil {
			return nil, err
		}
		addr = d
	}
	if ref.checkpoints == "" && store.IsPostgres(addr) {
		// Only for PostgreSQL: an SQLite store keeps its checkpoints in
		// its folder unless told otherwise, whatever else is set up.
		ref.checkpoints = os.Getenv("THAW_CHECKPOINTS")
	}
	var opts []store.Option
	if ref.checkpoints != "" {
		opts = append(opts, store.WithCheckpoints(ref.checkpoints))
	}
	return open(addr, opts...)
}

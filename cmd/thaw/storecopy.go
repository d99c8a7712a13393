package main

import (
	"context"
	"fmt"
	"strings"

	"thaw/store"
)

// runStore is thaw store: commands on a store as a whole.
func (m *Main) runStore(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "copy" {
		return usagef("store: want thaw store copy SRC DST")
	}
	return m.runStoreCopy(ctx, args[1:])
}

// runStoreCopy is thaw store copy SRC DST: every run of the store SRC, with
// its checkpoint files, into the store DST, typically an SQLite folder
// into a PostgreSQL database shared by several machines.
func (m *Main) runStoreCopy(ctx context.Context, args []string) error {
	fs := m.newFlags("store copy")
	srcRoot := fs.String("from-checkpoints", "", "SRC's checkpoint `dir` (default SRC's folder)")
	dstRoot := fs.String("checkpoints", "", "DST's checkpoint `dir`, which every machine of a shared store reaches; required when DST is PostgreSQL")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("store copy: want SRC and DST, the stores to copy from and to (a folder or a postgres:// URL each)")
	}
	src, err := openStoreForReading(storeRef{addr: pos[0], checkpoints: *srcRoot})
	if err != nil {
		return fmt.Errorf("store copy: from: %w", err)
	}
	defer src.Close()
	dst, err := openStore(storeRef{addr: pos[1], checkpoints: *dstRoot})
	if err != nil {
		return fmt.Errorf("store copy: to: %w", err)
	}
	defer dst.Close()
	res, err := store.Copy(ctx, dst, src)
	fmt.Fprintf(m.Stderr, "copied %d runs (%d files, %s) to %s", len(res.Copied), res.Files, fmtBytes(res.Bytes), store.Redact(pos[1]))
	if len(res.Present) > 0 {
		fmt.Fprintf(m.Stderr, "; %d were there already", len(res.Present))
	}
	fmt.Fprintln(m.Stderr)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	if len(res.Live) > 0 {
		short := make([]string, len(res.Live))
		for i, id := range res.Live {
			short[i] = store.Short(id)
		}
		return fmt.Errorf("store copy: %d runs are live and were not copied (%s): stop them, or let them end, and copy again", len(res.Live), strings.Join(short, ", "))
	}
	return nil
}

// Command thaw is a terminal workbench for fine-tuning neural networks.
//
// Headless commands:
//
//	thaw models                  list the base models of the zoo
//	thaw datasets                list the built-in datasets and tasks
//	thaw train   --model M --data D [flags]
//	thaw predict --model M --data D
//	thaw lr-find --model M --data D [flags]
//	thaw sweep --model M --data D [--shots K] [--plan P] [--seeds N] [--points all|B,...] [--json]
//	thaw runs [--json] [--status S] [--model M] [--name N] [--sweep ID]
//	thaw show RUN [--json]
//	thaw resume RUN [--json]
//	thaw branch RUN --from K|step:N [--plan P] [--json]
//	thaw save RUN -o DIR [--checkpoint best|last|stage:K|step:N]
//	thaw rm RUN
//	thaw version
//	thaw export RUN [RUN...] -o FILE [--metric NAME] [--log-y] [--smooth W] [--x step|epoch]
//	            [--width W --height H --dpi D] [--title T]
//	thaw export --diagnostics RUN -o FILE
//	thaw export --sweep ID -o FILE
//	thaw serve [--listen ADDR] [--authorized-keys FILE] [--host-key FILE] [--share-runs] ...
//	thaw store copy SRC DST [--checkpoints DIR]
//
// Every command that touches runs takes --store DIR (default $THAW_STORE,
// else $XDG_DATA_HOME/thaw, else ~/.local/share/thaw), or --store
// postgres://… for a PostgreSQL database shared by several machines, which
// also needs --checkpoints DIR (default $THAW_CHECKPOINTS), a folder they
// all reach.
//
// Exit codes: 0 done, 1 failed or interrupted, 2 bad usage or input,
// 3 training diverged.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"thaw/trainer/termtext"
)

func main() {
	// The first Ctrl-C (or SIGTERM) cancels the run, which stops within one batch and
	// reports what it has; a second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)

	m := NewMain()
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "thaw:", termtext.Sanitize(err.Error()))
		os.Exit(exitCode(err))
	}
}

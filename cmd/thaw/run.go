package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"thaw/assets"
	"thaw/store"
	"thaw/trainer"
)

// Main holds what the command wires together; tests build one with their own
// streams and zoo.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Zoo holds the base models, one folder per model; nil means none.
	Zoo fs.FS

	// serveReady, when set, is told where thaw serve listens: for tests.
	serveReady func(addr net.Addr, hostKey string)
	// setMemoryLimit, when set, is given the soft memory limit of a
	// command that runs one job (debug.SetMemoryLimit in the binary; nil
	// in tests, whose commands share a process).
	setMemoryLimit func(int64) int64
	// maxData is the data budget --max-data-bytes gives; 0 is the default.
	maxData int64
}

// NewMain returns a Main writing to the process's streams, with the
// embedded zoo.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Zoo: assets.Zoo(), setMemoryLimit: debug.SetMemoryLimit}
}

// Exit codes.
const (
	exitFailed   = 1 // the command failed or was interrupted
	exitUsage    = 2 // bad usage or input
	exitDiverged = 3 // training diverged
)

// usageError marks bad usage or input (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message; %w wraps as in
// fmt.Errorf.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err as bad input, keeping nil as nil.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

func exitCode(err error) int {
	var u usageError
	var in trainer.InputError
	switch {
	case errors.Is(err, trainer.ErrDiverged):
		return exitDiverged
	case errors.As(err, &u), errors.As(err, &in), errors.Is(err, store.ErrCheckpointRoot):
		return exitUsage
	}
	return exitFailed
}

const usage = `thaw: a terminal workbench for fine-tuning neural networks

Usage:
  thaw [--model DIR]... [--store DIR] [--checkpoints DIR] [--no-mouse]
                                  the workbench (on a terminal)
  thaw version                    this thaw's version, Go and BLAS backend
  thaw models                     list the base models of the zoo
  thaw datasets                   list the built-in datasets and tasks
  thaw train   --model M --data D [--plan P] [--shots K] [--val-split F]
               [--batch N] [--lr X] [--epochs N] [--seed N] [--eval-every N]
               [--init pretrained|scratch] [--freeze-below B] [--json]
               [--save DIR] [--name N] [--store DIR]
  thaw train   --sweep ID --index I
                                  train task I of a sweep (a cluster's task):
                                  claim its run, or resume it
  thaw sweep   --model M --data D [--shots K] [--plan P] [--seeds N |
               --seed-list S,...] [--points all|B,...] [--json]
                                  the first stage of plan P at every freeze
                                  point over seeds: a table of validation
                                  loss and accuracy (mean ± sd) and a pick
  thaw sweep   --resume ID        continue an interrupted sweep
  thaw sweep   ... --submit slurm|k8s|print
                                  queue a run per task and hand the tasks to
                                  a cluster: an sbatch array, an Indexed Job
                                  manifest or an xargs line
  thaw runs    [--json] [--status S] [--model M] [--name N] [--sweep ID]
                                  list the stored runs (a sweep's by point
                                  and seed)
  thaw show    RUN [--json]        a run's record, plan, stages, checkpoints
  thaw resume  RUN [--json]        continue an interrupted, stopped or queued run
  thaw branch  RUN --from K|step:N [--plan P] [--lr X] [--epochs N] [--json]
                                  a new run from the end of stage K (or a
                                  checkpoint at step N) of RUN, going on with
                                  the rest of its plan or with plan P
  thaw save    RUN -o DIR [--checkpoint best|last|stage:K|step:N]
                                  write a stored checkpoint's weights as a
                                  model folder (a base model in turn)
  thaw rm      RUN                 delete a run and its checkpoints
  thaw export  RUN [RUN...] -o FILE [--metric NAME] [--log-y] [--smooth W]
               [--x step|epoch] [--width W --height H --dpi D] [--title T]
                                  learning curves (or one metric) of runs
                                  as .png, .svg, .pdf or .csv
  thaw export  --diagnostics RUN -o FILE
                                  per-block drift from the pretrained weights
  thaw export  --sweep ID -o FILE  a sweep's validation loss and accuracy
                                  against the freeze point, with the probes
  thaw serve   [--listen 127.0.0.1:2222] [--authorized-keys FILE]
               [--host-key FILE] [--store DIR] [--max-runs-per-user N]
               [--max-runs N] [--idle-timeout D] [--share-runs] [--no-mouse]
                                  the workbench over SSH, public keys only
  thaw store copy SRC DST [--checkpoints DIR] [--from-checkpoints DIR]
                                  copy every run and its checkpoint files
                                  from one store to another, such as an
                                  SQLite folder into PostgreSQL
  thaw predict --model M --data D  write class probabilities as CSV (the data
                                  may have no labels; with them, the
                                  accuracy goes to stderr)
  thaw lr-find --model M --data D [--plan P] [--shots K] ...
  thaw zoo build [NAME...] [--out DIR]
                                  retrain base models from their recipes
  thaw bench transfer [--models M,...] [--shots 2,5,10] [--seeds N]
                                  few-shot transfer table: scratch, head,
                                  fine-tune, gradual

M is a zoo model's name or a folder with config.json and model.safetensors.
D is a built-in task (see thaw datasets), a CSV file (.csv or .csv.gz), an
IDX images file (labels found by MNIST's naming, or --labels) or an image
folder (root/<class>/*.png). RUN is a run id, a unique prefix of one, or
latest, the newest run. Commands that load data take --max-data-bytes N
(default 256M), the memory budget of the data loaded.
Runs are stored in --store DIR, else $THAW_STORE, else $XDG_DATA_HOME/thaw,
else ~/.local/share/thaw; --store postgres://… is a PostgreSQL database
that several machines share, with --checkpoints DIR (else
$THAW_CHECKPOINTS) a folder they all reach for the checkpoint files. Run
thaw COMMAND -h for a command's flags.

Exit codes: 0 done, 1 failed or interrupted, 2 bad usage or input,
3 training diverged.
`

// Run dispatches a command line (without the program name). ctx cancels a
// running command.
func (m *Main) Run(ctx context.Context, args []string) error {
	if (len(args) == 0 || isWorkbenchFlag(args[0])) && m.isTerminal() {
		return m.runWorkbench(ctx, args)
	}
	if len(args) > 0 && isWorkbenchFlag(args[0]) {
		return usagef("the workbench (thaw %s) needs a terminal for its input and output; the commands of thaw help work anywhere", args[0])
	}
	if len(args) == 0 {
		// Piped: say what there is.
		fmt.Fprint(m.Stdout, usage)
		fmt.Fprintf(m.Stdout, "\nBLAS backend: %s\n\nThe zoo:\n", trainer.Backend())
		return m.runModels(nil)
	}
	err := m.dispatch(ctx, args[0], args[1:])
	if errors.Is(err, flag.ErrHelp) {
		// The flag package has printed the command's flags.
		return nil
	}
	return err
}

// isWorkbenchFlag reports whether arg is one of the workbench's flags,
// which thaw takes without a command.
func isWorkbenchFlag(arg string) bool {
	for _, f := range []string{"-model", "--model", "-store", "--store", "-checkpoints", "--checkpoints", "-max-data-bytes", "--max-data-bytes"} {
		if arg == f || strings.HasPrefix(arg, f+"=") {
			return true
		}
	}
	return false
}

func (m *Main) dispatch(ctx context.Context, cmd string, rest []string) error {
	switch cmd {
	case "models":
		return m.runModels(rest)
	case "datasets":
		return m.runDatasets(rest)
	case "train":
		return m.runTrain(ctx, rest)
	case "predict":
		return m.runPredict(ctx, rest)
	case "lr-find":
		return m.runLRFind(ctx, rest)
	case "zoo":
		return m.runZoo(ctx, rest)
	case "bench":
		return m.runBench(ctx, rest)
	case "sweep":
		return m.runSweep(ctx, rest)
	case "runs":
		return m.runRuns(ctx, rest)
	case "show":
		return m.runShow(ctx, rest)
	case "resume":
		return m.runResume(ctx, rest)
	case "branch":
		return m.runBranch(ctx, rest)
	case "rm":
		return m.runRm(ctx, rest)
	case "save":
		return m.runSave(ctx, rest)
	case "export":
		return m.runExport(ctx, rest)
	case "serve":
		return m.runServe(ctx, rest)
	case "store":
		return m.runStore(ctx, rest)
	case "version", "-version", "--version":
		return m.runVersion(rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	}
	fmt.Fprint(m.Stderr, usage)
	return usagef("unknown command %q", cmd)
}

// newFlags returns a flag set for a command that reports to Stderr.
func (m *Main) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("thaw "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	return fs
}

// parse parses a command's flags; a positional argument is an error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{fmt.Errorf("%s: %w", cmdName(fs), err)}
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", cmdName(fs), fs.Arg(0))
	}
	return nil
}

// parseArgs parses a command's flags, which may come before, between or
// after its positional arguments, and returns those arguments in order;
// after "--" every argument is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{fmt.Errorf("%s: %w", cmdName(fs), err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// cmdName is a command's name as its errors start with: main prefixes
// "thaw: ", so "show", not "thaw show".
func cmdName(fs *flag.FlagSet) string {
	return strings.TrimPrefix(fs.Name(), "thaw ")
}

// runVersion is thaw version: the version of this binary, how it was
// built and which BLAS it multiplies with.
func (m *Main) runVersion(args []string) error {
	if err := parse(m.newFlags("version"), args); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "thaw %s (%s, %s/%s, BLAS %s)\n", thawVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, trainer.Backend())
	return nil
}

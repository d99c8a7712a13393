package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"thaw/store"
	"thaw/store/engine"
	"thaw/store/engine/cluster"
	"thaw/trainer/termtext"
)

// submitFlags are thaw sweep's flags for handing the sweep to a cluster's
// scheduler instead of training it here.
type submitFlags struct {
	to        string // slurm, k8s or print; empty: train here
	out       string
	thaw      string
	storeFile string
	slurm     cluster.Slurm
	k8s       cluster.K8s
}

// submitFlagNames are the flags that say how to submit, which --resume
// takes (a resubmission may ask for other resources).
var submitFlagNames = []string{"submit", "out", "thaw", "store-file", "cpus-per-task", "mem", "time", "partition", "account",
	"image", "namespace", "secret", "secret-key", "claim", "backoff-limit-per-index", "cpu-request", "mem-request"}

func (f *submitFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.to, "submit", "", "record the sweep with a queued run per task and hand its tasks to a scheduler instead of training them here: `slurm` (write an sbatch array script and sbatch it), k8s (write a Kubernetes Indexed Job manifest) or print (an xargs line for any shell)")
	fs.StringVar(&f.out, "out", "", "with --submit, write the script or manifest to `file` (default thaw-sweep-ID.sbatch or .yaml here; print: stdout)")
	fs.StringVar(&f.thaw, "thaw", "", "with --submit, the thaw `command` on the nodes (default: this executable's path; thaw for k8s)")
	fs.StringVar(&f.storeFile, "store-file", "", "with --submit slurm or print, a `file` on the nodes that holds the store's address, read there (needed when the address has a password, which no artefact holds)")
	fs.IntVar(&f.slurm.CPUs, "cpus-per-task", 1, "with --submit slurm, sbatch's --cpus-per-task `N` of each task")
	fs.StringVar(&f.slurm.Mem, "mem", "", "with --submit slurm, sbatch's --mem of each task, such as `2G`")
	fs.StringVar(&f.slurm.Time, "time", "", "with --submit slurm, sbatch's --time limit of each task, such as `1:00:00`")
	fs.StringVar(&f.slurm.Partition, "partition", "", "with --submit slurm, sbatch's --partition `name`")
	fs.StringVar(&f.slurm.Account, "account", "", "with --submit slurm, sbatch's --account `name`")
	fs.StringVar(&f.k8s.Image, "image", "", "with --submit k8s, the container `image` that holds thaw (required)")
	fs.StringVar(&f.k8s.Namespace, "namespace", "", "with --submit k8s, the Job's `namespace` (default: kubectl's)")
	fs.StringVar(&f.k8s.Secret, "secret", cluster.DefaultSecret, "with --submit k8s, the Secret `name` that holds the store's address, which you create")
	fs.StringVar(&f.k8s.SecretKey, "secret-key", cluster.DefaultSecretKey, "with --submit k8s, the `key` of the address in --secret")
	fs.StringVar(&f.k8s.Claim, "claim", cluster.DefaultClaim, "with --submit k8s, the PersistentVolumeClaim `name` that holds the checkpoint root, mounted at its path")
	fs.IntVar(&f.k8s.BackoffLimitPerIndex, "backoff-limit-per-index", cluster.DefaultBackoffLimitPerIndex, "with --submit k8s, the retries `N` of one task before it counts as failed")
	fs.StringVar(&f.k8s.CPU, "cpu-request", "", "with --submit k8s, each pod's CPU `request`, such as 1")
	fs.StringVar(&f.k8s.Mem, "mem-request", "", "with --submit k8s, each pod's memory `request` and limit, such as 2Gi")
}

func (f *submitFlags) check() error {
	switch f.to {
	case "", "slurm", "k8s", "print":
	default:
		return usagef("sweep: --submit %q: want slurm, k8s or print", f.to)
	}
	if f.to == "k8s" && f.k8s.Image == "" {
		return usagef("sweep: --submit k8s needs --image, the container image that holds thaw")
	}
	return nil
}

// submission is the sweep id's tasks as the scheduler is to run them.
func (f *submitFlags) submission(ref storeRef, id string, tasks int, pending []int, workers int) (*cluster.Submission, error) {
	addr, ckpt, err := storeAddress(ref)
	if err != nil {
		return nil, err
	}
	sub := &cluster.Submission{Sweep: id, Tasks: tasks, Indices: pending, Parallel: workers, Thaw: f.thaw,
		Store: addr, StoreFile: f.storeFile, Checkpoints: ckpt, Slurm: f.slurm, K8s: f.k8s}
	if sub.Thaw == "" && f.to != "k8s" {
		if exe, err := os.Executable(); err == nil {
			sub.Thaw = exe
		}
	}
	return sub, nil
}

// artefact is the scheduler's artefact for sub and its file's extension
// (none for the shell line, which goes to stdout).
func (f *submitFlags) artefact(sub *cluster.Submission) (text, ext string, err error) {
	switch f.to {
	case "slurm":
		text, err = sub.SlurmScript()
		ext = ".sbatch"
	case "k8s":
		sub.Indices = nil // an Indexed Job covers every index; a done task trains nothing
		text, err = sub.K8sManifest()
		ext = ".yaml"
	case "print":
		text, err = sub.ShellLine()
	}
	if err != nil {
		return "", "", usagef("sweep: --submit %s: %w", f.to, err)
	}
	return text, ext, nil
}

// preflight checks, before anything is recorded, that the artefact can
// be written: the address's password has somewhere to come from, the
// manifest has a checkpoint root to mount.
func (f *submitFlags) preflight(ref storeRef) error {
	if f.to == "" {
		return nil
	}
	sub, err := f.submission(ref, "preflight", 1, nil, 0)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	_, _, err = f.artefact(sub)
	return err
}

// submitOutput is what thaw sweep --submit --json writes.
type submitOutput struct {
	Sweep    string `json:"sweep"`
	Tasks    int    `json:"tasks"`
	Pending  []int  `json:"pending"`
	Artefact string `json:"artefact,omitempty"`
	Job      string `json:"job,omitempty"`
}

// submitSweep queues a run for every task of the sweep id that has none,
// writes the scheduler's artefact for the tasks not done and, for Slurm,
// submits it.
func (m *Main) submitSweep(ctx context.Context, eng *engine.Engine, id string, ref storeRef, f submitFlags, workers int, asJSON bool) error {
	pending, err := eng.QueueSweep(ctx, id, engine.StartOptions{})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	tasks, err := eng.SweepTable(ctx, id)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	out := submitOutput{Sweep: id, Tasks: tasks.Total, Pending: pending}
	if out.Pending == nil {
		out.Pending = []int{}
	}
	short := store.Short(id)
	fmt.Fprintf(m.Stderr, "sweep %s: %d runs queued, %d of %d tasks to run (thaw runs --sweep %s; thaw sweep --show %s prints the table)\n",
		short, len(pending), len(pending), tasks.Total, short, short)
	if len(pending) == 0 {
		fmt.Fprintln(m.Stderr, "every task is done: nothing to submit")
		return writeSubmitJSON(m, asJSON, out)
	}
	sub, err := f.submission(ref, id, tasks.Total, pending, workers)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	text, ext, err := f.artefact(sub)
	if err != nil {
		return err
	}
	path := f.out
	if path == "" && ext != "" {
		path = sub.JobName() + ext
	}
	if path == "" {
		if asJSON {
			fmt.Fprint(m.Stderr, text)
		} else {
			fmt.Fprint(m.Stdout, text)
		}
		return writeSubmitJSON(m, asJSON, out)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	out.Artefact = path
	fmt.Fprintf(m.Stderr, "wrote %s\n", termtext.Sanitize(path))
	switch f.to {
	case "k8s":
		fmt.Fprintf(m.Stderr, "run it with kubectl apply -f %s, once the Secret %s holds the store's address and the claim %s the checkpoint root\n",
			termtext.Sanitize(path), f.k8s.Secret, f.k8s.Claim)
	case "print":
		fmt.Fprintf(m.Stderr, "run it with sh %s on a machine that reaches the store\n", termtext.Sanitize(path))
	case "slurm":
		cmd := exec.CommandContext(ctx, "sbatch", "--parsable", path)
		b, err := cmd.Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
				msg = strings.TrimSpace(string(ee.Stderr))
			}
			return fmt.Errorf("sweep: sbatch %s: %s (the runs stay queued: submit the script again, or thaw sweep --resume %s --submit slurm)",
				termtext.Sanitize(path), termtext.Sanitize(msg), short)
		}
		job, _, _ := strings.Cut(strings.TrimSpace(string(b)), ";")
		out.Job = job
		fmt.Fprintf(m.Stderr, "submitted Slurm job %s, array %s (squeue -j %s)\n", termtext.Sanitize(job), cluster.ArraySpec(pending, workers), termtext.Sanitize(job))
	}
	return writeSubmitJSON(m, asJSON, out)
}

func writeSubmitJSON(m *Main, asJSON bool, out submitOutput) error {
	if !asJSON {
		return nil
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// storeAddress is the store's address and checkpoint root as the nodes
// are to reach them: --store or the default, an SQLite folder made
// absolute; --checkpoints or, for PostgreSQL, $THAW_CHECKPOINTS.
func storeAddress(ref storeRef) (addr, checkpoints string, err error) {
	addr = ref.addr
	if addr == "" {
		if addr, err = store.DefaultDir(); err != nil {
			return "", "", err
		}
	}
	checkpoints = ref.checkpoints
	if store.IsPostgres(addr) {
		if checkpoints == "" {
			checkpoints = os.Getenv("THAW_CHECKPOINTS")
		}
	} else if addr, err = filepath.Abs(addr); err != nil {
		return "", "", err
	}
	if checkpoints != "" {
		if checkpoints, err = filepath.Abs(checkpoints); err != nil {
			return "", "", err
		}
	}
	return addr, checkpoints, nil
}

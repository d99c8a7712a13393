// Package cluster writes what hands a sweep's tasks to a cluster's own
// scheduler: an sbatch array script, a Kubernetes Indexed Job manifest, or
// an xargs line for any shell. Each task is one thaw train --sweep ID
// --index I that claims its queued run in the shared store and records
// itself; there is no controller of thaw's own.
//
// No artefact holds a password: an address with one is read on the node
// from a file the script names (Slurm), from a Secret the user creates
// (Kubernetes), or from THAW_STORE in the workers' environment (a shell).
package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Submission is a sweep's tasks as a scheduler is to run them.
type Submission struct {
	Sweep string // the sweep's full id
	Tasks int    // the sweep's tasks, indices 0 to Tasks-1
	// Indices are the tasks to run, ascending; nil means all of them. A
	// Kubernetes Job always covers every index: a done task trains
	// nothing.
	Indices []int
	// Parallel bounds the tasks running at once; 0 means no bound of
	// thaw's (the scheduler's own).
	Parallel int
	// Thaw is the thaw command on the nodes: a path, or "thaw" on PATH.
	Thaw string

	// Store is the store's address (an SQLite folder every node reaches
	// or a postgres:// URL). It is written into an artefact only when it
	// holds no password.
	Store string
	// StoreFile, when set, is a file on the nodes that holds the address;
	// the Slurm script and the shell line read it there.
	StoreFile string
	// Checkpoints is the checkpoint root every node reaches; empty for an
	// SQLite store that keeps them in its folder.
	Checkpoints string

	Slurm Slurm
	K8s   K8s
}

// Slurm holds an sbatch array's resources; empty ones are left to the
// cluster's defaults.
type Slurm struct {
	CPUs      int    // --cpus-per-task
	Mem       string // --mem, such as 2G
	Time      string // --time, such as 1:00:00
	Partition string // --partition
	Account   string // --account
	Output    string // --output; empty: thaw-sweep-<id>-%A_%a.out in the submitting folder
}

// K8s holds what an Indexed Job needs beyond the sweep.
type K8s struct {
	Image     string // the container image with thaw in it
	Namespace string // empty: the namespace kubectl is on
	// Secret and SecretKey name the Secret that holds the store's address
	// (the user creates it; the manifest only references it).
	Secret    string
	SecretKey string
	// Claim is the PersistentVolumeClaim that holds the checkpoint root,
	// mounted at the root's own path.
	Claim string
	// BackoffLimitPerIndex is the retries of one index before it counts
	// as failed.
	BackoffLimitPerIndex int
	CPU                  string // resources.requests.cpu, such as "1"
	Mem                  string // resources.requests.memory and limits.memory, such as 2Gi
}

// Defaults for the Kubernetes manifest.
const (
	DefaultSecret               = "thaw-store"
	DefaultSecretKey            = "address"
	DefaultClaim                = "thaw-checkpoints"
	DefaultBackoffLimitPerIndex = 2
)

// HasPassword reports whether a store address carries a password, as a
// URL's user information or a password parameter.
func HasPassword(addr string) bool {
	if strings.Contains(strings.ToLower(addr), "password=") {
		return true
	}
	u, err := url.Parse(addr)
	if err != nil {
		// Not a URL we can read: treat it as secret rather than write it.
		return strings.Contains(addr, "://")
	}
	_, ok := u.User.Password()
	return ok
}

// ErrPassword: the store's address has a password and nothing says where
// the nodes read it from.
var ErrPassword = errors.New("the store's address has a password, which no artefact holds")

// JobName is the scheduler's name for the sweep's job: thaw-sweep- and
// the sweep's short id, lower case (a Kubernetes name).
func (s *Submission) JobName() string {
	id := s.Sweep
	if len(id) > 8 {
		id = id[len(id)-8:]
	}
	return "thaw-sweep-" + strings.ToLower(id)
}

func (s *Submission) indices() []int {
	if s.Indices != nil {
		return s.Indices
	}
	out := make([]int, s.Tasks)
	for i := range out {
		out[i] = i
	}
	return out
}

func (s *Submission) check() error {
	if s.Sweep == "" || s.Tasks < 1 {
		return fmt.Errorf("no sweep tasks")
	}
	for _, i := range s.indices() {
		if i < 0 || i >= s.Tasks {
			return fmt.Errorf("task %d: the sweep has tasks 0 to %d", i, s.Tasks-1)
		}
	}
	if len(s.indices()) == 0 {
		return fmt.Errorf("no tasks to run")
	}
	if s.Parallel < 0 {
		return fmt.Errorf("parallel %d: want 0 (no bound) or more", s.Parallel)
	}
	return nil
}

// ArraySpec is the indices as sbatch's --array takes them, ranges joined
// by commas, with %K for a bound: 0-3%2, 1,3-5.
func ArraySpec(indices []int, parallel int) string {
	idx := slices.Clone(indices)
	slices.Sort(idx)
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		} else {
			parts = append(parts, strconv.Itoa(idx[i]))
		}
		i = j + 1
	}
	spec := strings.Join(parts, ",")
	if parallel > 0 && parallel < len(idx) {
		spec += "%" + strconv.Itoa(parallel)
	}
	return spec
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,:=+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// storeLines are the shell lines that set THAW_STORE and THAW_CHECKPOINTS
// on a node: the address from StoreFile, or written out when it has no
// password. envOK says the address may come from the environment the
// line runs in instead (a shell the user starts).
func (s *Submission) storeLines(envOK bool) ([]string, error) {
	var lines []string
	switch {
	case s.StoreFile != "":
		lines = append(lines, "# The store's address is read on the node from this file, never written here.",
			"THAW_STORE=$(cat "+shellQuote(s.StoreFile)+")", "export THAW_STORE")
	case s.Store != "" && !HasPassword(s.Store):
		lines = append(lines, "export THAW_STORE="+shellQuote(s.Store))
	case envOK:
		lines = append(lines, "# THAW_STORE holds the store's address in the environment this runs in.")
	default:
		return nil, fmt.Errorf("%w: name a file on the nodes that holds it (--store-file)", ErrPassword)
	}
	if s.Checkpoints != "" {
		lines = append(lines, "export THAW_CHECKPOINTS="+shellQuote(s.Checkpoints))
	}
	return lines, nil
}

// SlurmScript is the sbatch array script: one array task per index, each
// thaw train --sweep ID --index $SLURM_ARRAY_TASK_ID. scancel sends
// SIGTERM, which stops a run resumably; submitting the index again
// resumes it.
func (s *Submission) SlurmScript() (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	env, err := s.storeLines(false)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("#!/bin/bash")
	p("# thaw sweep %s: %d tasks, each one thaw train --sweep ID --index I.", s.Sweep, s.Tasks)
	p("# A task cancelled or failed resumes when submitted again:")
	p("# thaw sweep --resume %s --submit slurm submits the tasks not done.", s.Sweep)
	p("#SBATCH --job-name=%s", s.JobName())
	p("#SBATCH --array=%s", ArraySpec(s.indices(), s.Parallel))
	if c := s.Slurm.CPUs; c > 0 {
		p("#SBATCH --cpus-per-task=%d", c)
	}
	p("#SBATCH --ntasks=1")
	for _, kv := range [][2]string{{"mem", s.Slurm.Mem}, {"time", s.Slurm.Time}, {"partition", s.Slurm.Partition}, {"account", s.Slurm.Account}} {
		if kv[1] != "" {
			p("#SBATCH --%s=%s", kv[0], kv[1])
		}
	}
	out := s.Slurm.Output
	if out == "" {
		out = s.JobName() + "-%A_%a.out"
	}
	p("#SBATCH --output=%s", out)
	p("set -euo pipefail")
	for _, l := range env {
		p("%s", l)
	}
	p(`exec %s train --sweep %s --index "$SLURM_ARRAY_TASK_ID"`, shellQuote(s.thaw()), s.Sweep)
	return b.String(), nil
}

func (s *Submission) thaw() string {
	if s.Thaw == "" {
		return "thaw"
	}
	return s.Thaw
}

// ShellLine is the xargs -P line that runs the tasks on any machine that
// reaches the store, Parallel at a time (one per core when 0).
func (s *Submission) ShellLine() (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	env, err := s.storeLines(true)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range env {
		b.WriteString(l + "\n")
	}
	idx := s.indices()
	feed := fmt.Sprintf("seq 0 %d", s.Tasks-1)
	if len(idx) < s.Tasks {
		words := make([]string, len(idx))
		for i, v := range idx {
			words[i] = strconv.Itoa(v)
		}
		feed = "printf '%s\\n' " + strings.Join(words, " ")
	}
	par := "$(nproc)"
	if s.Parallel > 0 {
		par = strconv.Itoa(s.Parallel)
	}
	fmt.Fprintf(&b, "%s | xargs -P %s -I{} %s train --sweep %s --index {}\n", feed, par, shellQuote(s.thaw()), s.Sweep)
	return b.String(), nil
}

// K8sManifest is the Kubernetes Indexed Job: completions N, parallelism
// K, each pod thaw train --sweep ID --index $(JOB_COMPLETION_INDEX), the
// store's address from a Secret, the checkpoint root from a volume claim
// mounted at the same path.
func (s *Submission) K8sManifest() (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	k := s.K8s
	if k.Image == "" {
		return "", fmt.Errorf("no container image (--image)")
	}
	secret, key, claim := or(k.Secret, DefaultSecret), or(k.SecretKey, DefaultSecretKey), or(k.Claim, DefaultClaim)
	root := s.Checkpoints
	if root == "" {
		// An SQLite store keeps its checkpoints in its own folder.
		root = s.Store
	}
	if root == "" || HasPassword(root) || !strings.HasPrefix(root, "/") {
		return "", fmt.Errorf("no checkpoint root to mount: --checkpoints names it, an absolute path on the volume claim %s", claim)
	}
	backoff := k.BackoffLimitPerIndex
	if backoff <= 0 {
		backoff = DefaultBackoffLimitPerIndex
	}
	par := s.Parallel
	if par <= 0 || par > s.Tasks {
		par = s.Tasks
	}
	q := strconv.Quote
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# thaw sweep %s: %d tasks, each one thaw train --sweep ID --index I.", s.Sweep, s.Tasks)
	p("# The store's address is in the Secret %s (key %s), which you create:", secret, key)
	p("#   kubectl create secret generic %s --from-file=%s=FILE  (FILE holds postgres://USER:PASSWORD@HOST/DB)", secret, key)
	p("# The checkpoint root is the volume claim %s, mounted at %s on every pod.", claim, root)
	p("apiVersion: batch/v1")
	p("kind: Job")
	p("metadata:")
	p("  name: %s", q(s.JobName()))
	if k.Namespace != "" {
		p("  namespace: %s", q(k.Namespace))
	}
	p("  labels:")
	p("    app.kubernetes.io/name: thaw")
	p("    thaw/sweep: %s", q(s.Sweep))
	p("spec:")
	p("  completionMode: Indexed")
	p("  completions: %d", s.Tasks)
	p("  parallelism: %d", par)
	p("  backoffLimitPerIndex: %d", backoff)
	p("  maxFailedIndexes: %d", s.Tasks)
	p("  template:")
	p("    metadata:")
	p("      labels:")
	p("        app.kubernetes.io/name: thaw")
	p("        thaw/sweep: %s", q(s.Sweep))
	p("    spec:")
	p("      restartPolicy: Never")
	p("      containers:")
	p("        - name: thaw")
	p("          image: %s", q(k.Image))
	p("          command: [%s, \"train\", \"--sweep\", %s, \"--index\", \"$(JOB_COMPLETION_INDEX)\"]", q(s.thaw()), q(s.Sweep))
	p("          env:")
	p("            - name: THAW_STORE")
	p("              valueFrom:")
	p("                secretKeyRef:")
	p("                  name: %s", q(secret))
	p("                  key: %s", q(key))
	if s.Checkpoints != "" {
		p("            - name: THAW_CHECKPOINTS")
		p("              value: %s", q(s.Checkpoints))
	}
	if k.CPU != "" || k.Mem != "" {
		p("          resources:")
		p("            requests:")
		if k.CPU != "" {
			p("              cpu: %s", q(k.CPU))
		}
		if k.Mem != "" {
			p("              memory: %s", q(k.Mem))
			p("            limits:")
			p("              memory: %s", q(k.Mem))
		}
	}
	p("          volumeMounts:")
	p("            - name: checkpoints")
	p("              mountPath: %s", q(root))
	p("      volumes:")
	p("        - name: checkpoints")
	p("          persistentVolumeClaim:")
	p("            claimName: %s", q(claim))
	return b.String(), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

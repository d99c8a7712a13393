package cluster

import (
	"errors"
	"strings"
	"testing"
)

const password = "s3cret-Pa55"

func testSubmission() *Submission {
	return &Submission{Sweep: "01KBX3F2A1BC0DE4FGH5JK6MNP", Tasks: 8,
		Store: "postgres://thaw:" + password + "@db.example:5432/thaw?sslmode=require", StoreFile: "/home/ada/.config/thaw/store",
		Checkpoints: "/shared/thaw/checkpoints", Thaw: "thaw"}
}

func TestArraySpec(t *testing.T) {
	for _, c := range []struct {
		idx  []int
		par  int
		want string
	}{
		{[]int{0, 1, 2, 3}, 2, "0-3%2"},
		{[]int{0, 1, 2, 3}, 0, "0-3"},
		{[]int{1, 3, 4, 5, 9}, 0, "1,3-5,9"},
		{[]int{2}, 1, "2"},
		{[]int{0, 1}, 2, "0-1"},
	} {
		if got := ArraySpec(c.idx, c.par); got != c.want {
			t.Errorf("ArraySpec(%v, %d) = %q, want %q", c.idx, c.par, got, c.want)
		}
	}
}

// No artefact holds the password of the store's address: Slurm reads the
// address from a file, Kubernetes from a Secret, a shell from its
// environment; without a file, the Slurm script is refused.
func TestNoPasswordInArtefacts(t *testing.T) {
	s := testSubmission()
	s.Parallel = 2
	s.Slurm = Slurm{CPUs: 1, Mem: "2G", Time: "1:00:00", Partition: "cpu"}
	s.K8s = K8s{Image: "thaw:1"}
	script, err := s.SlurmScript()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := s.K8sManifest()
	if err != nil {
		t.Fatal(err)
	}
	line, err := s.ShellLine()
	if err != nil {
		t.Fatal(err)
	}
	s.StoreFile = ""
	envLine, err := s.ShellLine()
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]string{"sbatch script": script, "manifest": manifest, "shell line": line, "shell line from the environment": envLine} {
		if strings.Contains(a, password) || strings.Contains(a, "db.example") {
			t.Errorf("the %s holds the store's address:\n%s", name, a)
		}
	}
	for _, want := range []string{"#SBATCH --array=0-7%2", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=2G", "#SBATCH --time=1:00:00",
		"#SBATCH --partition=cpu", "THAW_STORE=$(cat /home/ada/.config/thaw/store)", "export THAW_CHECKPOINTS=/shared/thaw/checkpoints",
		`exec thaw train --sweep 01KBX3F2A1BC0DE4FGH5JK6MNP --index "$SLURM_ARRAY_TASK_ID"`} {
		if !strings.Contains(script, want) {
			t.Errorf("the sbatch script has no %q:\n%s", want, script)
		}
	}
	if want := "seq 0 7 | xargs -P 2 -I{} thaw train --sweep 01KBX3F2A1BC0DE4FGH5JK6MNP --index {}"; !strings.Contains(line, want) {
		t.Errorf("the shell line has no %q:\n%s", want, line)
	}
	if _, err := s.SlurmScript(); !errors.Is(err, ErrPassword) {
		t.Errorf("a Slurm script for an address with a password and no file: %v, want ErrPassword", err)
	}
}

// An address without a password is written out; a resubmission runs only
// the tasks it names.
func TestSlurmScriptWithoutPassword(t *testing.T) {
	s := &Submission{Sweep: "01KBX3F2A1BC0DE4FGH5JK6MNP", Tasks: 4, Indices: []int{1, 3}, Store: "/shared/thaw store", Thaw: "/opt/thaw/bin/thaw"}
	script, err := s.SlurmScript()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array=1,3\n", "export THAW_STORE='/shared/thaw store'", "exec /opt/thaw/bin/thaw train"} {
		if !strings.Contains(script, want) {
			t.Errorf("no %q in\n%s", want, script)
		}
	}
	if strings.Contains(script, "THAW_CHECKPOINTS") {
		t.Errorf("an SQLite store's script sets a checkpoint root:\n%s", script)
	}
	s.Indices = []int{4}
	if _, err := s.SlurmScript(); err == nil {
		t.Error("index 4 of 4 tasks accepted")
	}
}

func TestHasPassword(t *testing.T) {
	for addr, want := range map[string]bool{
		"postgres://u:p@h/db":                 true,
		"postgres://u@h/db":                   false,
		"postgresql://h/db?password=x":        true,
		"/home/ada/.local/share/thaw":         false,
		"postgres://h/db?sslmode=verify-full": false,
	} {
		if got := HasPassword(addr); got != want {
			t.Errorf("HasPassword(%q) = %v, want %v", addr, got, want)
		}
	}
}

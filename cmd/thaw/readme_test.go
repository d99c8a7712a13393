package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeSkips are the README's shell lines this test does not run, by
// prefix, each with the reason.
var readmeSkips = []struct{ prefix, reason string }{
	{"go install ./cmd/thaw", "installs the binary the examples call; the test builds its own"},
	{"go test ./...", "runs the whole test suite, this test among it"},
	{"go run ./cmd/thaw", "opens the workbench, which needs a terminal (tmux drives it in .ci/run)"},
	{"apt-get install", "installs a system package"},
	{"go build -tags openblas", "needs libopenblas-dev, which .ci/run installs and builds with"},
	{"thaw zoo build", "long: retrains every base model of the zoo (TestZooBuildWritesTheShippedBytes checks one)"},
	{"thaw bench transfer", "long: trains every method on every seed (TestBenchTransferPrintsATable runs a small one)"},
}

// readmeCommands returns the lines of the README's sh code blocks, in
// order, without their trailing comments.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			in = !in && strings.TrimSpace(strings.TrimPrefix(line, "```")) == "sh"
		case in:
			if i := strings.Index(line, " #"); i >= 0 {
				line = line[:i]
			}
			if line = strings.TrimSpace(line); line != "" {
				cmds = append(cmds, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// Every shell example in the README runs as written, in order, against the
// built binary and a store of its own, from an empty folder.
func TestREADMEExamplesRun(t *testing.T) {
	bin := thawBinary(t)
	work := t.TempDir()
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"THAW_STORE="+filepath.Join(work, "store"))
	ran := 0
	for _, line := range readmeCommands(t) {
		skipped := false
		for _, s := range readmeSkips {
			if strings.HasPrefix(line, s.prefix) {
				t.Logf("skip %q: %s", line, s.reason)
				skipped = true
			}
		}
		if skipped {
			continue
		}
		if !strings.HasPrefix(line, "thaw ") {
			t.Errorf("README runs %q: not a thaw command, and no reason to skip it", line)
			continue
		}
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README example %q: %v\n%s", line, err, out)
		}
		ran++
	}
	if ran < 10 {
		t.Errorf("ran %d README examples, want the dozen or so it has", ran)
	}
}

// The README's table of what --lr and --epochs do to each preset is the
// one thaw train -h prints.
func TestREADMEPresetFlags(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), strings.Join(presetFlagsMarkdown(), "\n")) {
		t.Errorf("README.md lacks the presets' flag table; it should read:\n%s", strings.Join(presetFlagsMarkdown(), "\n"))
	}
	_, stderr, code := runMain(t, t.Context(), &Main{}, "train", "-h")
	for _, p := range presetFlags() {
		if code != 0 || !strings.Contains(stderr, "--lr X: "+p.lr) || !strings.Contains(stderr, "neither: "+p.neither) {
			t.Errorf("thaw train -h does not say what the flags do to %s:\n%s", p.name, stderr)
		}
	}
}

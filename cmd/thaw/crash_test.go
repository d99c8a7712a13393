package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"thaw/ui"
)

// TestCrashNamesItsLog: the workbench's panic exits non-zero with an error
// that names a log file holding the panic and its stack.
func TestCrashNamesItsLog(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	err := crashError(&ui.Crash{Value: "index out of range [2] with length 2", Stack: []byte("goroutine 1 [running]:\nthaw/ui.(*runsScreen).refilter")})
	if err == nil || exitCode(err) == 0 {
		t.Fatalf("err %v, exit %d; want a non-zero exit", err, exitCode(err))
	}
	m := regexp.MustCompile(`its stack is in (\S+)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("%v names no log file", err)
	}
	b, rerr := os.ReadFile(m[1])
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(b), "index out of range") || !strings.Contains(string(b), "runsScreen).refilter") {
		t.Errorf("log %s:\n%s", m[1], b)
	}
}

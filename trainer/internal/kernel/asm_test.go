package kernel

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAsmIsAllVEX reads kernel_amd64.s and fails on any legacy SSE
// instruction (one without the VEX prefix, whose Go mnemonic lacks the
// leading V) that touches a vector register. Mixed into AVX code, such an
// instruction makes the processor merge the upper halves of the 256-bit
// registers that the AVX code left dirty: one MOVQ SI, X13 per output row
// made maxPool2x2Plane eleven times slower than with VMOVQ (1.5 against
// 17 GB/s on BenchmarkMaxPool2x2), slower than the generic loop, and cost
// half the CPU of a default digits-cnn run. VZEROUPPER before each RET
// keeps Go's own SSE code safe after a kernel; this keeps the kernels
// safe inside.
func TestAsmIsAllVEX(t *testing.T) {
	f, err := os.Open("kernel_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vector := regexp.MustCompile(`\b[XYZ]\d+\b`)
	sc := bufio.NewScanner(f)
	n, checked := 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasSuffix(fields[0], ":") || fields[0] == "TEXT" || fields[0] == "DATA" || fields[0] == "GLOBL" {
			continue
		}
		if !vector.MatchString(strings.Join(fields[1:], " ")) {
			continue
		}
		checked++
		if !strings.HasPrefix(fields[0], "V") {
			t.Errorf("kernel_amd64.s:%d: %s is a legacy SSE instruction on a vector register; use its VEX form (V%s)", n, fields[0], fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("kernel_amd64.s: only %d instructions on vector registers found; the check no longer reads the file as it should", checked)
	}
}

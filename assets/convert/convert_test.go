package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestOptdigitsFillsTheFrameKeepingAspect(t *testing.T) {
	// A 20 tall × 10 wide bar of ink becomes 32 tall × 16 wide, centred:
	// block columns 2–5 full (16 on-pixels), the others empty.
	img := make([]byte, 28*28)
	for y := 4; y < 24; y++ {
		for x := 9; x < 19; x++ {
			img[y*28+x] = 255
		}
	}
	got := optdigits8x8(img)
	for r := 0; r < 8; r++ {
		for c := 0; c < 8; c++ {
			want := uint8(0)
			if c >= 2 && c <= 5 {
				want = 16
			}
			if got[r*8+c] != want {
				t.Fatalf("block (%d,%d) = %d, want %d; all: %v", r, c, got[r*8+c], want, got)
			}
		}
	}
	if got := optdigits8x8(make([]byte, 28*28)); got != [64]uint8{} {
		t.Fatalf("blank image gave %v", got)
	}
}

func TestGzipOutputIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0,1,2,16\n"), 1000)
	var outs [][]byte
	for i := 0; i < 2; i++ {
		c := &converter{out: filepath.Join(dir, string(rune('a'+i)))}
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.writeGzip("x.csv.gz", data); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(c.out, "x.csv.gz"))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("two writes of the same data differ")
	}
	// Header: magic, deflate, no flags, zero mtime, no name.
	if h := outs[0][:8]; !bytes.Equal(h, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}) {
		t.Fatalf("gzip header % x carries a name or a time", h)
	}
}

func TestReadRDAReadsADataFrame(t *testing.T) {
	// save() of data.frame(a = 1:2, b = c(0.5, 2)) as object "df", by hand.
	var b bytes.Buffer
	w := func(v ...int32) {
		for _, x := range v {
			b.Write([]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
		}
	}
	str := func(s string) { w(0x00040009, int32(len(s))); b.WriteString(s) }
	b.WriteString("RDX2\nX\n")
	w(2, 0x040000, 0x020300)
	w(0x402)       // pairlist cell with tag
	w(1)           // SYMSXP
	str("df")      // its name
	w(0x313, 2)    // VECSXP, object, attributes, length 2
	w(13, 2, 1, 2) // INTSXP 1:2
	w(14, 2)       // REALSXP length 2
	b.Write([]byte{0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0})
	w(0x402) // attributes pairlist: names
	w(1)
	str("names")
	w(16, 2)
	str("a")
	str("b")
	w(254) // end of attributes
	w(254) // end of top pairlist
	objs, err := readRDA(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	df := objs["df"]
	if df == nil || len(df.elems) != 2 || df.elems[0].ints[1] != 2 || df.elems[1].reals[0] != 0.5 {
		t.Fatalf("got %+v", df)
	}
	if n := df.attr["names"].strs; len(n) != 2 || n[0] != "a" || n[1] != "b" {
		t.Fatalf("names %q", n)
	}
}

package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// maxBombRSS is what a hostile data file may cost the process that
// refuses it, at most: twice the default data budget (256 MiB), which
// leaves the runtime, the model and the collector's headroom their room.
const maxBombRSS = 512 << 20

// runBomb runs the thaw binary with args and checks that it refuses the
// input as bad (exit 2) with one line that contains want, within
// maxBombRSS (from the subprocess's rusage), and logs both.
func runBomb(t *testing.T, bin, want string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "THAW_STORE="+filepath.Join(t.TempDir(), "store"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSuffix(stderr.String(), "\n")
	if code := exitCodeOf(err); code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%.2000s", code, msg)
	}
	if msg == "" || strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Errorf("stderr %q, want one line containing %q", msg, want)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the subprocess")
	}
	rss := int64(ru.Maxrss) * 1024 // KiB on Linux
	t.Logf("max RSS %.0f MiB: %s", float64(rss)/(1<<20), msg)
	if rss >= maxBombRSS {
		t.Errorf("max RSS %d MiB, want under %d MiB", rss>>20, maxBombRSS>>20)
	}
}

// gzipMembers writes a gzip file of head and then body n times, each a
// gzip member of its own (RFC 1952 allows many; gzip -d and Go read them
// as one stream): a file of a few megabytes that inflates to n times
// body, built without compressing all of it.
func gzipMembers(t *testing.T, path string, head []byte, body []byte, n int) string {
	t.Helper()
	member := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(member(head))
	m := member(body)
	for range n {
		if _, err := f.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// pngRGBA64 writes a valid 16-bit RGBA PNG of w×h black pixels, as small
// as zlib makes it, without holding the image.
func pngRGBA64(t *testing.T, path string, w, h int) string {
	t.Helper()
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestSpeed)
	row := make([]byte, 1+8*w) // filter byte 0, then the pixels
	for range h {
		zw.Write(row)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(kind string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		io.WriteString(crc, kind)
		crc.Write(data)
		b.WriteString(kind)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 6, 0, 0, 0) // 16 bits, RGBA, deflate, no filter, no interlace
	chunk("IHDR", ihdr)
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	mustWrite(t, path, b.String())
	return path
}

// smallPNG writes a 28×28 gray PNG.
func smallPNG(t *testing.T, path string) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 28, 28))); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, b.String())
}

// Hostile data files, each refused as bad input (exit 2) with one line
// naming the file (and, when the budget refuses it, the flag that raises
// the budget), each costing the real binary less than maxBombRSS: the
// data budget counts what loading holds before it is allocated.
func TestDataBombs(t *testing.T) {
	bin := thawBinary(t)
	fx := newFixture(t)
	dir := t.TempDir()
	header := []byte("f0,f1,f2,f3,label\n")

	t.Run("csv.gz inflating past the budget", func(t *testing.T) {
		// 2 GiB of short rows in 2,048 gzip members of 1 MiB each.
		body := bytes.Repeat([]byte("0,0,0,0,x\n0,0,0,0,y\n"), 1<<20/20)
		path := gzipMembers(t, filepath.Join(dir, "rows.csv.gz"), header, body, 2048)
		runBomb(t, bin, "rows.csv.gz:", "train", "--model", fx.model, "--data", path)
	})
	t.Run("csv.gz of one 4 GiB line", func(t *testing.T) {
		body := bytes.Repeat([]byte("0"), 1<<20)
		path := gzipMembers(t, filepath.Join(dir, "line.csv.gz"), append(header, '1'), body, 4096)
		runBomb(t, bin, "line.csv.gz:2: record is too large", "train", "--model", fx.model, "--data", path)
	})
	t.Run("csv of one 100 MB line", func(t *testing.T) {
		// Under the budget on disk, so the file's size does not refuse
		// it: the line does, before encoding/csv buffers it.
		path := filepath.Join(dir, "line.csv")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(append(header, '1'))
		digits := bytes.Repeat([]byte("0"), 1<<20)
		for range 100 {
			f.Write(digits)
		}
		f.WriteString(",2,3,4,x\n")
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		runBomb(t, bin, "line.csv:2: record is too large", "train", "--model", fx.model, "--data", path)
	})
	t.Run("16-bit RGBA 8000x8000 PNG", func(t *testing.T) {
		// 64 Mpixel, under the pixel cap; 512 MB once decoded.
		root := filepath.Join(dir, "big")
		os.MkdirAll(filepath.Join(root, "a"), 0o755)
		os.MkdirAll(filepath.Join(root, "b"), 0o755)
		pngRGBA64(t, filepath.Join(root, "a", "big.png"), 8000, 8000)
		smallPNG(t, filepath.Join(root, "b", "ok.png"))
		runBomb(t, bin, "big.png: 8000×8000 image: decoding it needs", "train", "--model", "digits-cnn", "--data", root)
	})
	t.Run("many images", func(t *testing.T) {
		// Eight 16-bit RGBA images of 2800×2800, 63 MB each decoded and
		// each within the budget alone, then one that does not decode:
		// what the earlier ones left behind must not add up.
		root := filepath.Join(dir, "many")
		os.MkdirAll(filepath.Join(root, "a"), 0o755)
		os.MkdirAll(filepath.Join(root, "b"), 0o755)
		one := pngRGBA64(t, filepath.Join(root, "a", "0.png"), 2800, 2800)
		b, err := os.ReadFile(one)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 8; i++ {
			mustWrite(t, filepath.Join(root, "a", string(rune('0'+i))+".png"), string(b))
		}
		mustWrite(t, filepath.Join(root, "b", "broken.png"), string(b[:len(b)/2]))
		runBomb(t, bin, "broken.png: bad png image", "train", "--model", "digits-cnn", "--data", root)
	})
}

// --max-data-bytes sets the data budget that the refusal names, and a
// larger one lets the same data load.
func TestMaxDataBytesFlag(t *testing.T) {
	fx := newFixture(t)
	store := filepath.Join(fx.dir, "store")
	for _, tc := range []struct {
		budget  string
		code    int
		wantErr string
	}{
		{"2K", 2, "over the 2.0 KiB limit (--max-data-bytes)"},
		{"8K", 2, "passes the 8.0 KiB limit (--max-data-bytes)"},
		{"0", 2, `invalid value "0" for flag -max-data-bytes`},
		{"lots", 2, `invalid value "lots" for flag -max-data-bytes`},
		{"1MiB", 0, ""},
	} {
		t.Run(tc.budget, func(t *testing.T) {
			_, stderr, code := runMain(t, t.Context(), &Main{}, "train", "--store", store, "--model", fx.model, "--data", fx.data,
				"--steps", "1", "--max-data-bytes", tc.budget)
			if code != tc.code || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.wantErr)
			}
		})
	}
}

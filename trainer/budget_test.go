package trainer

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadersDecodedBudget: the loaders count what they decode, not only
// what they read, against LoadOptions.MaxBytes, and refuse past it naming
// the file and the limit. Every file here is far under the limit on disk
// and as text; only its decoded form passes it.
func TestLoadersDecodedBudget(t *testing.T) {
	dir := t.TempDir()

	// 200 rows of "1,a": 800 bytes of text, 2.4 kB decoded (4 bytes a
	// feature, 8 a label). Under a 1000-byte limit the two classes (65
	// bytes each) and 7 chunks of 5 rows fit (a chunk is a sixteenth of
	// the limit at most, and counts twice: 120 bytes); the 36th row, on
	// line 37, does not.
	var b strings.Builder
	b.WriteString("x,label\n")
	for i := range 200 {
		b.WriteString("1," + string(rune('a'+i%2)) + "\n")
	}
	text := []byte(b.String())
	csvPath := writeFile(t, filepath.Join(dir, "rows.csv"), text)
	gzPath := writeFile(t, filepath.Join(dir, "rows.csv.gz"), gzipBytes(t, text))

	// 100 u8 images of 2×2: 400 raw bytes, 1,600 as float32; labels 100
	// raw bytes and 800 as ints.
	images := writeFile(t, filepath.Join(dir, "img.idx"), idxBytes(idxU8, []int{100, 2, 2}, make([]byte, 400)))
	lbl := make([]byte, 100)
	for i := range lbl {
		lbl[i] = byte(i % 2)
	}
	labels := writeFile(t, filepath.Join(dir, "lbl.idx"), idxBytes(idxU8, []int{100}, lbl))

	// Two 64×64 gray PNGs of a few hundred bytes each, to 4×4 samples:
	// 144 bytes of samples and labels, but 4 KiB of pixels, 16 KiB of
	// planes and 1 KiB of resizing rows while each decodes.
	folder := filepath.Join(dir, "folder")
	big := pngBytes(t, image.NewGray(image.Rect(0, 0, 64, 64)))
	writeFile(t, filepath.Join(folder, "a", "x.png"), big)
	writeFile(t, filepath.Join(folder, "b", "y.png"), big)

	for _, tc := range []struct {
		name  string
		limit int64
		load  func(LoadOptions) (*Dataset, error)
		want  string
	}{
		{"csv", 1000, func(o LoadOptions) (*Dataset, error) { return LoadCSV(csvPath, o) },
			csvPath + ":37: decoded data is too large: it passes the 1000 B limit (LoadOptions.MaxBytes)"},
		{"csv.gz", 1000, func(o LoadOptions) (*Dataset, error) { return LoadCSV(gzPath, o) },
			gzPath + ":37: decoded data is too large: it passes the 1000 B limit (LoadOptions.MaxBytes)"},
		{"idx images", 1900, func(o LoadOptions) (*Dataset, error) { return LoadIDX(images, labels, o) },
			images + ": byte 12: shape [100 2 2] is too large: decoded, it passes the 1.9 KiB limit (LoadOptions.MaxBytes)"},
		{"idx labels", 2200, func(o LoadOptions) (*Dataset, error) { return LoadIDX(images, labels, o) },
			labels + ": byte 4: shape [100] is too large: decoded, it passes the 2.1 KiB limit (LoadOptions.MaxBytes)"},
		{"image folder", 8 << 10, func(o LoadOptions) (*Dataset, error) {
			return LoadImageFolder(folder, []int{1, 4, 4}, o)
		}, filepath.Join(folder, "a", "x.png") + ": 64×64 image: decoding it needs 21.0 KiB: decoded data is too large: it passes the 8.0 KiB limit (LoadOptions.MaxBytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.load(LoadOptions{MaxBytes: tc.limit})
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// Raising the limit, as a front-end's flag does, lets it load.
			ds, err := tc.load(LoadOptions{MaxBytes: 64 << 10})
			if err != nil || ds.Len() == 0 {
				t.Fatalf("with a 64 KiB limit: %v", err)
			}
		})
	}
}

// An Adam7-interlaced PNG costs its decoded size once more (image/png
// decodes its passes as images of their own), counted from its header.
func TestInterlacedPNGBudget(t *testing.T) {
	b := pngBytes(t, image.NewGray(image.Rect(0, 0, 64, 64)))
	// Set IHDR's interlace byte and its CRC: the budget refuses the file
	// before anything reads the (now wrongly laid out) pixels.
	b[28] = 1
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	root := t.TempDir()
	path := writeFile(t, filepath.Join(root, "a", "x.png"), b)
	writeFile(t, filepath.Join(root, "b", "y.png"), pngBytes(t, image.NewGray(image.Rect(0, 0, 4, 4))))
	// 4 KiB of pixels twice, 16 KiB of planes, 1 KiB of resizing rows,
	// over a 24 KiB limit that the same image not interlaced fits.
	_, err := LoadImageFolder(root, []int{1, 4, 4}, LoadOptions{MaxBytes: 24 << 10})
	want := path + ": 64×64 image: decoding it needs 25.0 KiB: decoded data is too large"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

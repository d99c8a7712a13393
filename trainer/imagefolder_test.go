package trainer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// grayRamp is a w×h gray image with pixel (x, y) = 10·(y·w + x).
func grayRamp(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = uint8(10 * i)
	}
	return g
}

func solid(w, h int, c color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

// imageFolder writes a small folder of PNG and JPEG files of several sizes
// and modes:
//
//	dark/a.png     4×4 gray ramp
//	dark/b.jpg     8×6 solid RGB (40, 80, 120)
//	light/c.png    2×2 NRGBA, red with one half-transparent blue pixel
//	light/d.JPEG   3×3 solid gray 200
//	light/e.png    2×2 paletted, green and white
//
// and files the loader must skip: light/.DS_Store, .hidden/x.png, and
// README.txt at the root.
func imageFolder(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	put := func(rel string, b []byte) { writeFile(t, filepath.Join(root, rel), b) }
	put("dark/a.png", pngBytes(t, grayRamp(4, 4)))
	put("dark/b.jpg", jpegBytes(t, solid(8, 6, color.RGBA{40, 80, 120, 255})))

	rgba := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := range 3 {
		rgba.SetNRGBA(i%2, i/2, color.NRGBA{255, 0, 0, 255})
	}
	rgba.SetNRGBA(1, 1, color.NRGBA{0, 0, 200, 128}) // half-transparent blue
	put("light/c.png", pngBytes(t, rgba))
	put("light/d.JPEG", jpegBytes(t, solid(3, 3, color.Gray{200})))
	pal := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.RGBA{0, 255, 0, 255}, color.RGBA{255, 255, 255, 255}})
	pal.SetColorIndex(1, 0, 1)
	put("light/e.png", pngBytes(t, pal))

	put("light/.DS_Store", []byte("junk"))
	put(".hidden/x.png", pngBytes(t, grayRamp(1, 1)))
	put("README.txt", []byte("not a class"))
	return root
}

func TestLoadImageFolder(t *testing.T) {
	root := imageFolder(t)
	// Tolerances: opaque PNG values go through 16-bit colour and float32,
	// exact to about 1e-6; premultiplying alpha in 16 bits truncates, within
	// 2/65535; a solid JPEG at quality 100 comes back within a couple of
	// levels of 255.
	const exact, alpha, lossy = 1e-6, 2.0 / 65535, 3.0 / 255
	blue := 200.0 / 255 * 128 / 255 // the half-transparent blue over black

	gray, err := LoadImageFolder(root, []int{1, 2, 2}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dark", "light"}; !slices.Equal(gray.Classes, want) {
		t.Errorf("classes %v, want %v", gray.Classes, want)
	}
	if want := []int{0, 0, 1, 1, 1}; !slices.Equal(gray.Y, want) {
		t.Errorf("labels %v, want %v (sorted files, hidden skipped)", gray.Y, want)
	}
	if err := gray.Validate(); err != nil {
		t.Fatal(err)
	}

	rgb, err := LoadImageFolder(root, []int{3, 1, 2}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	luma := func(r, g, b float64) float64 { return (0.299*r + 0.587*g + 0.114*b) / 255 }
	for _, tc := range []struct {
		name string
		ds   *Dataset
		i    int // sample
		j    int // value within the sample, C·H·W order
		want float64
		tol  float64
	}{
		// 4×4 ramp to 2×2: the mean of the top-left block 0, 10, 40, 50.
		{"gray shrunk", gray, 0, 0, 25.0 / 255, exact},
		// bottom-right block 100, 110, 140, 150.
		{"gray shrunk corner", gray, 0, 3, 125.0 / 255, exact},
		{"jpeg gray", gray, 1, 2, luma(40, 80, 120), lossy},
		// 2×2 kept: red is luminance 0.299; the half-transparent blue
		// is composited over black.
		{"rgba red luminance", gray, 2, 0, luma(255, 0, 0), exact},
		{"rgba alpha over black", gray, 2, 3, 0.114 * blue, alpha},
		{"jpeg grayscale enlarged", gray, 3, 0, 200.0 / 255, lossy},
		{"paletted", gray, 4, 0, luma(0, 255, 0), exact},
		{"paletted white", gray, 4, 1, 1, exact},
		// RGB at 1×2: gray stays gray in every channel.
		{"gray to rgb", rgb, 0, 0, (0 + 10 + 40 + 50 + 80 + 90 + 120 + 130) / 8.0 / 255, exact},
		{"gray to rgb blue", rgb, 0, 4, (0 + 10 + 40 + 50 + 80 + 90 + 120 + 130) / 8.0 / 255, exact},
		{"jpeg red", rgb, 1, 0, 40.0 / 255, lossy},
		{"jpeg blue", rgb, 1, 5, 120.0 / 255, lossy},
		// Right column of the RGBA image: red above the half-transparent
		// blue, averaged: R = 0.5, B = blue/2.
		{"rgba red mix", rgb, 2, 1, 0.5, exact},
		{"rgba blue mix", rgb, 2, 5, blue / 2, alpha},
	} {
		got := float64(tc.ds.Sample(tc.i)[tc.j])
		if math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s: sample %d value %d = %v, want %v ± %v", tc.name, tc.i, tc.j, got, tc.want, tc.tol)
		}
	}
	for i, v := range rgb.X {
		if v < 0 || v > 1 {
			t.Fatalf("value %d = %v, outside [0,1]", i, v)
		}
	}
}

func TestAreaTaps(t *testing.T) {
	for _, tc := range []struct{ src, dst int }{{4, 2}, {5, 3}, {3, 7}, {1, 4}, {6, 6}, {1000, 7}} {
		for o, ts := range areaTaps(tc.src, tc.dst) {
			var s float64
			for _, tp := range ts {
				s += float64(tp.w)
				if tp.i < 0 || tp.i >= tc.src {
					t.Fatalf("%d→%d: output %d reads input %d", tc.src, tc.dst, o, tp.i)
				}
			}
			// float32 weights, a handful summed.
			if math.Abs(s-1) > 1e-5 {
				t.Errorf("%d→%d: output %d weights sum to %v, want 1", tc.src, tc.dst, o, s)
			}
		}
	}
}

func TestLoadImageFolderErrors(t *testing.T) {
	ok := func(t *testing.T) []byte { return pngBytes(t, grayRamp(2, 2)) }
	for _, tc := range []struct {
		name  string
		files map[string][]byte // nil content makes a folder
		shape []int
		opts  LoadOptions
		want  string // relative path, then the gist
	}{
		{"empty class", map[string][]byte{"a/x.png": ok(t), "b/": nil}, []int{1, 2, 2}, LoadOptions{},
			"b: class folder has no images"},
		{"only hidden files", map[string][]byte{"a/x.png": ok(t), "b/.keep": {}}, []int{1, 2, 2}, LoadOptions{},
			"b: class folder has no images"},
		{"bad image", map[string][]byte{"a/x.png": []byte("\x89PNG\r\n\x1a\nbroken"), "b/y.png": ok(t)}, []int{1, 2, 2}, LoadOptions{},
			filepath.Join("a", "x.png") + ": bad image"},
		{"not an image", map[string][]byte{"a/x.jpg": []byte("hello"), "b/y.png": ok(t)}, []int{1, 2, 2}, LoadOptions{},
			filepath.Join("a", "x.jpg") + ": not a PNG or JPEG image"},
		{"unsupported extension", map[string][]byte{"a/x.gif": []byte("GIF89a")}, []int{1, 2, 2}, LoadOptions{},
			filepath.Join("a", "x.gif") + ": unsupported format"},
		{"nested folder", map[string][]byte{"a/x.png": ok(t), "a/sub/": nil}, []int{1, 2, 2}, LoadOptions{},
			"a" + string(filepath.Separator) + "sub: folder inside a class folder"},
		{"no classes", map[string][]byte{"x.png": ok(t)}, []int{1, 2, 2}, LoadOptions{},
			": no class folders"},
		{"unknown class", map[string][]byte{"a/x.png": ok(t)}, []int{1, 2, 2}, LoadOptions{Classes: []string{"b"}},
			`a: folder is not one of the 1 classes ["b"]`},
		{"class name not UTF-8", map[string][]byte{"a/x.png": ok(t), "caf\xe9/y.png": ok(t)}, []int{1, 2, 2}, LoadOptions{},
			"caf\xe9: class folder name \"caf\\xe9\" is not valid UTF-8"},
		{"over the cap", map[string][]byte{"a/x.png": ok(t), "b/y.png": ok(t)}, []int{3, 8, 8}, LoadOptions{MaxBytes: 1000},
			": 2 images of shape [3 8 8] are too large: 1.5 KiB, over the 1000 B limit"},
	} {
		root := t.TempDir()
		for rel, b := range tc.files {
			if b == nil {
				writeFile(t, filepath.Join(root, rel, ".tmp"), nil)
				continue
			}
			writeFile(t, filepath.Join(root, rel), b)
		}
		_, err := LoadImageFolder(root, tc.shape, tc.opts)
		if err == nil || !strings.Contains(err.Error(), root+string(filepath.Separator)+tc.want) && !strings.Contains(err.Error(), root+tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}

	for _, shape := range [][]int{{2, 4, 4}, {4, 4}, {1, 0, 4}} {
		if _, err := LoadImageFolder(t.TempDir(), shape, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "want [C H W]") {
			t.Errorf("shape %v: error %v", shape, err)
		}
	}
}

func TestLoadImageFolderTooManyPixels(t *testing.T) {
	// A PNG header declaring 2¹⁴×2¹⁴ pixels; refused before decoding.
	const ihdr = "IHDR\x00\x00\x40\x00\x00\x00\x40\x00\x08\x00\x00\x00\x00" // 16384², 8-bit gray
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d" + ihdr)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(ihdr)))
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "big.png"), b)
	writeFile(t, filepath.Join(root, "b", "ok.png"), pngBytes(t, grayRamp(2, 2)))
	_, err := LoadImageFolder(root, []int{1, 2, 2}, LoadOptions{})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.png") {
		t.Errorf("error %v, want the image refused", err)
	}
}

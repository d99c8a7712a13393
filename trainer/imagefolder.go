package trainer

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode
	_ "image/png"  // registers the PNG decoder with image.Decode
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxImagePixels bounds the size of one decoded image (64 Mpixel, a 8k×8k
// photo), checked from its header before decoding, so a small file that
// declares an enormous image is refused.
const maxImagePixels = 1 << 26

// LoadImageFolder reads labelled images laid out one folder per class,
// root/<class>/<image>, as torchvision's ImageFolder does.
//
// The classes are the names of root's sub-folders sorted byte-wise, or
// opts.Classes when set (then every folder must be named in it, and a class
// without a folder has no samples). Files directly in root are ignored
// (a README, a licence), as are hidden files and folders (names starting
// with "."). Inside a class folder, every other entry must be a PNG or JPEG
// file (.png, .jpg, .jpeg in any case), read in sorted order; an empty class
// folder is an error naming it, and so is a class folder whose name is not
// valid UTF-8. Without opts.Classes, a root with one class
// folder is refused (ErrTooFewClasses); folder names that print alike on a
// terminal are refused (ErrClassNames).
//
// With opts.Unlabelled, a root with no class folders is a flat folder of
// images to label: every PNG or JPEG file in it, in sorted order, other
// files ignored; the dataset then has no classes (see LoadOptions).
//
// shape is the model's input, [C, H, W] with C 1 or 3. Every image is
// converted to it:
//   - channels: C=3 takes red, green and blue; C=1 takes the luminance
//     0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as Go's color.GrayModel and
//     PIL's "L" mode). Alpha is composited over black, as premultiplied
//     colour has it.
//   - size: area averaging (a box filter, OpenCV's INTER_AREA): shrinking
//     gives each output pixel the mean of the input pixels it covers,
//     weighted by overlap; enlarging replicates pixels. The aspect ratio is
//     not kept.
//   - values: scaled to [0,1] (8-bit 255 and 16-bit 65535 both become 1).
//
// The samples must fit in opts.MaxBytes (4 bytes per value), checked before
// any image is decoded; so must the samples together with each decoded
// image, checked from its header before it is decoded. Errors name the file or folder: an unsupported
// format, a file that does not decode, an image over 64 Mpixel.
func LoadImageFolder(root string, shape []int, opts LoadOptions) (*Dataset, error) {
	if len(shape) != 3 || shape[0] != 1 && shape[0] != 3 || shape[1] <= 0 || shape[2] <= 0 {
		return nil, fmt.Errorf("image folder %s: input shape %v, want [C H W] with C 1 or 3", root, shape)
	}
	limit := opts.maxBytes()
	items, classes, err := listImages(root, opts)
	if err != nil {
		return nil, err
	}
	per := numel(shape)
	mem := opts.budget()
	if need := int64(len(items)) * (int64(per)*4 + 8); mem.take(need) != nil {
		return nil, &DataError{File: root, Offset: -1, Err: fmt.Errorf("%d images of shape %v are %w: %s, over the %s limit (%s)",
			len(items), shape, ErrTooLarge, formatBytes(need), formatBytes(limit), mem.limitName())}
	}

	ds := &Dataset{
		Name:    filepath.Base(root),
		Shape:   slices.Clone(shape),
		X:       make([]float32, len(items)*per),
		Y:       make([]int, len(items)),
		Classes: classes,
	}
	var rs resizer
	for i, it := range items {
		img, cost, err := decodeImage(it.path, mem, shape)
		if err != nil {
			return nil, &DataError{File: it.path, Offset: -1, Err: err}
		}
		rs.convert(ds.X[i*per:(i+1)*per], shape, img)
		mem.give(cost)
		ds.Y[i] = it.label
	}
	return ds, nil
}

// imageItem is one image of a folder and its label.
type imageItem struct {
	path  string
	label int
}

// ImageFiles returns the files LoadImageFolder(root, shape, opts) reads, in
// the order of its samples, without decoding them; its listing errors are
// the loader's.
func ImageFiles(root string, opts LoadOptions) ([]string, error) {
	items, _, err := listImages(root, opts)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(items))
	for i, it := range items {
		files[i] = it.path
	}
	return files, nil
}

// listImages lists the images of root and their labels, and the classes,
// checking the layout (see LoadImageFolder).
func listImages(root string, opts LoadOptions) ([]imageItem, []string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, err
	}
	var folders []string
	var items []imageItem
	for _, e := range entries {
		if hidden(e.Name()) || !isDir(filepath.Join(root, e.Name()), e) {
			continue
		}
		folders = append(folders, e.Name())
	}
	if len(folders) == 0 && opts.Unlabelled {
		// A flat folder of images to label: every image in root, in
		// sorted order; other files are left alone.
		for _, e := range entries {
			path := filepath.Join(root, e.Name())
			if hidden(e.Name()) || isDir(path, e) {
				continue
			}
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".png", ".jpg", ".jpeg":
				items = append(items, imageItem{path, 0})
			}
		}
		if len(items) == 0 {
			return nil, nil, &DataError{File: root, Offset: -1, Err: errors.New("no images (.png, .jpg, .jpeg) and no class folders")}
		}
		return items, nil, nil
	}
	if len(folders) == 0 {
		return nil, nil, &DataError{File: root, Offset: -1, Err: errors.New("no class folders, want root/<class>/<image>")}
	}

	classes := folders // os.ReadDir sorts by name
	if opts.Classes != nil {
		classes = slices.Clone(opts.Classes)
	}
	classID := make(map[string]int, len(classes))
	for i, c := range classes {
		if _, dup := classID[c]; dup {
			return nil, nil, fmt.Errorf("image folder %s: class %s appears twice in LoadOptions.Classes", root, quote(c))
		}
		classID[c] = i
	}

	// List everything first, so the memory check and every listing error
	// come before the slow part.
	for _, folder := range folders {
		dir := filepath.Join(root, folder)
		if !utf8.ValidString(folder) {
			// A class name is written to model files and JSON as UTF-8;
			// an invalid one would come back as another name.
			return nil, nil, &DataError{File: dir, Offset: -1, Err: fmt.Errorf("class folder name %s is not valid UTF-8", quote(folder))}
		}
		id, ok := classID[folder]
		if !ok {
			return nil, nil, &DataError{File: dir, Offset: -1, Err: fmt.Errorf("folder is not one of the %d classes %s", len(classes), quoteNames(classes))}
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, err
		}
		n := 0
		for _, f := range files {
			name := f.Name()
			path := filepath.Join(dir, name)
			if hidden(name) {
				continue
			}
			if isDir(path, f) {
				return nil, nil, &DataError{File: path, Offset: -1, Err: errors.New("folder inside a class folder, want images only")}
			}
			switch strings.ToLower(filepath.Ext(name)) {
			case ".png", ".jpg", ".jpeg":
			default:
				return nil, nil, &DataError{File: path, Offset: -1, Err: errors.New("unsupported format, want .png, .jpg or .jpeg")}
			}
			items = append(items, imageItem{path, id})
			n++
		}
		if n == 0 {
			return nil, nil, &DataError{File: dir, Offset: -1, Err: errors.New("class folder has no images")}
		}
	}
	counts := make([]int, len(classes))
	for _, it := range items {
		counts[it.label]++
	}
	if err := checkLoaded(root, counts, classes, opts.Classes != nil); err != nil {
		return nil, nil, err
	}
	return items, classes, nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// isDir reports whether a directory entry is a folder, following a
// symbolic link.
func isDir(path string, e os.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink == 0 {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// decodeImage decodes a PNG or JPEG file, checking its declared size
// first: the decoded image and the planes convert makes of it for a sample
// of shape are taken from mem, and returned as cost for the caller to give
// back once the image is converted.
func decodeImage(path string, mem *budget, shape []int) (img image.Image, cost int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if err := checkFileSize(f, mem); err != nil {
		return nil, 0, err
	}
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, 0, errors.New("not a PNG or JPEG image")
		}
		return nil, 0, fmt.Errorf("bad image: %w", err)
	}
	if format != "png" && format != "jpeg" {
		return nil, 0, fmt.Errorf("unsupported format %s, want PNG or JPEG", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, 0, fmt.Errorf("bad image: %d×%d pixels", cfg.Width, cfg.Height)
	}
	pixels := int64(cfg.Width) * int64(cfg.Height)
	if pixels > maxImagePixels {
		return nil, 0, fmt.Errorf("image is %w: %d×%d pixels, over %d", ErrTooLarge, cfg.Width, cfg.Height, maxImagePixels)
	}
	// The decoded pixels, the float32 planes and the resizer's row buffer.
	decoded := pixels * pixelBytes(cfg.ColorModel)
	cost = decoded + pixels*int64(shape[0])*4 + int64(cfg.Height)*int64(shape[2])*4
	if format == "png" {
		interlaced, err := pngInterlaced(f)
		if err != nil {
			return nil, 0, err
		}
		if interlaced {
			// image/png decodes Adam7's seven passes as images of their
			// own, together the size of the image, before merging them.
			cost += decoded
		}
	}
	if err := mem.take(cost); err != nil {
		return nil, 0, fmt.Errorf("%d×%d image: decoding it needs %s: %w", cfg.Width, cfg.Height, formatBytes(cost), err)
	}
	defer func() {
		if err != nil {
			mem.give(cost)
		}
	}()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	img, _, err = image.Decode(f)
	if err != nil {
		return nil, 0, fmt.Errorf("bad %s image: %w", format, err)
	}
	return img, cost, nil
}

// pngInterlaced reports whether the PNG file f, which image.DecodeConfig
// has read, is Adam7-interlaced: the last byte of its IHDR chunk, which a
// PNG starts with (the signature, then the chunk's length and type, then
// width, height, depth, colour type, compression and filter).
func pngInterlaced(f io.ReaderAt) (bool, error) {
	var b [1]byte
	if _, err := f.ReadAt(b[:], 8+8+12); err != nil {
		return false, fmt.Errorf("bad image: %w", err)
	}
	return b[0] != 0, nil
}

// pixelBytes is the memory a decoded pixel of the color model takes: 1 for
// gray and paletted images, 2 for 16-bit gray, 8 for 16-bit colour, 3 for
// JPEG's YCbCr at its largest (4:4:4), 4 otherwise.
func pixelBytes(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	case color.YCbCrModel:
		return 3
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// resizer converts images to planes of a fixed size, keeping its buffers
// from one image to the next.
type resizer struct {
	src, tmp []float32
}

// convert writes img into dst as [C, H, W] values in [0,1].
func (rs *resizer) convert(dst []float32, shape []int, img image.Image) {
	c, h, w := shape[0], shape[1], shape[2]
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	rs.src = slices.Grow(rs.src[:0], c*sw*sh)[:c*sw*sh]
	planes(rs.src, c, img)
	xt, yt := areaTaps(sw, w), areaTaps(sh, h)
	rs.tmp = slices.Grow(rs.tmp[:0], sh*w)[:sh*w]
	for k := 0; k < c; k++ {
		resizePlane(dst[k*h*w:(k+1)*h*w], w, h, rs.src[k*sw*sh:(k+1)*sw*sh], sw, sh, xt, yt, rs.tmp)
	}
	// Weights sum to 1 only up to rounding; keep the promise of [0,1].
	for i, v := range dst {
		dst[i] = min(max(v, 0), 1)
	}
}

// BT.601 luma weights.
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// planes writes img's pixels into dst as c planes in [0,1].
func planes(dst []float32, c int, img image.Image) {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if g, ok := img.(*image.Gray); ok {
		// Gray is exact this way; the general path would go through 16 bits.
		for y := 0; y < sh; y++ {
			row := g.Pix[y*g.Stride : y*g.Stride+sw]
			for x, v := range row {
				f := float32(v) / 255
				for k := 0; k < c; k++ {
					dst[k*sw*sh+y*sw+x] = f
				}
			}
		}
		return
	}
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			r16, g16, b16, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			r, g, bl := float64(r16)/0xffff, float64(g16)/0xffff, float64(b16)/0xffff
			i := y*sw + x
			if c == 1 {
				dst[i] = float32(lumaR*r + lumaG*g + lumaB*bl)
				continue
			}
			dst[i], dst[sw*sh+i], dst[2*sw*sh+i] = float32(r), float32(g), float32(bl)
		}
	}
}

// tap is one input pixel's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// areaTaps returns, for each of dst output pixels along an axis of src
// input pixels, the input pixels it overlaps and their weights: the overlap
// divided by the output pixel's width in input pixels, so weights sum to 1.
func areaTaps(src, dst int) [][]tap {
	scale := float64(src) / float64(dst)
	taps := make([][]tap, dst)
	for o := range taps {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for j := int(math.Floor(lo)); j < src && float64(j) < hi; j++ {
			ov := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
			if ov > 1e-9 {
				taps[o] = append(taps[o], tap{j, float32(ov / scale)})
			}
		}
	}
	return taps
}

// resizePlane resamples one plane, rows first into tmp (sh×dw), then
// columns into dst (dh×dw).
func resizePlane(dst []float32, dw, dh int, src []float32, sw, sh int, xt, yt [][]tap, tmp []float32) {
	for y := 0; y < sh; y++ {
		row := src[y*sw : (y+1)*sw]
		for x, ts := range xt {
			var s float32
			for _, t := range ts {
				s += t.w * row[t.i]
			}
			tmp[y*dw+x] = s
		}
	}
	for y, ts := range yt {
		out := dst[y*dw : (y+1)*dw]
		clear(out)
		for _, t := range ts {
			in := tmp[t.i*dw : (t.i+1)*dw]
			for x := range out {
				out[x] += t.w * in[x]
			}
		}
	}
}

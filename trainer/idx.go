package trainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The IDX format is the one MNIST ships in (LeCun, Cortes and Burges, "The
// MNIST database of handwritten digits"): a magic number of two zero bytes,
// an element type and a dimension count, then each dimension as a big-endian
// uint32, then the elements, big-endian, last dimension fastest.

// IDX element types, the third byte of the magic number.
const (
	idxU8  = 0x08
	idxI8  = 0x09
	idxI16 = 0x0B
	idxI32 = 0x0C
	idxF32 = 0x0D
	idxF64 = 0x0E
)

// maxIDXDims bounds the dimension count; real files have one to four.
const maxIDXDims = 8

// maxIDXClasses bounds the distinct label values when the caller gives no
// class list, so a corrupt labels file cannot make millions of classes.
const maxIDXClasses = 1 << 16

// idxClassCost is what one distinct label costs in memory, roughly: a map
// entry and a name.
const idxClassCost = 64

// idxChunk is how much data is read at a time: memory grows with the bytes
// that actually arrive, never with what a header claims.
const idxChunk = 1 << 20

// idxGrowth is the factor by which the buffer of a file's data grows.
const idxGrowth = 16

func idxTypeName(t byte) string {
	switch t {
	case idxU8:
		return "u8"
	case idxI8:
		return "i8"
	case idxI16:
		return "i16"
	case idxI32:
		return "i32"
	case idxF32:
		return "f32"
	case idxF64:
		return "f64"
	}
	return fmt.Sprintf("0x%02x", t)
}

func idxElemSize(t byte) int {
	switch t {
	case idxU8, idxI8:
		return 1
	case idxI16:
		return 2
	case idxI32, idxF32:
		return 4
	case idxF64:
		return 8
	}
	return 0
}

// idxFile is a decoded header and the raw, still big-endian elements.
type idxFile struct {
	name    string
	typ     byte
	shape   []int
	raw     []byte
	dataOff int64 // offset of the first element
	gz      bool
	mem     *budget // holds the raw elements until release
	charged int64   // bytes of raw elements taken from mem
}

// release drops the raw elements and gives their bytes back to the budget.
func (f *idxFile) release() {
	if f.mem != nil {
		f.mem.give(f.charged)
		f.mem = nil
	}
	f.raw = nil
}

func (f *idxFile) errAt(off int64, format string, args ...any) error {
	return &DataError{File: f.name, Offset: off, Decompressed: f.gz, Err: fmt.Errorf(format, args...)}
}

// countingReader counts the bytes read through it, for error offsets.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ReadIDX reads one IDX file, gzipped or not (detected by the gzip magic
// bytes 1f 8b), and returns its shape and its elements as float32 exactly as
// stored: u8 pixels stay 0–255 here (LoadIDX scales them to [0,1]); i32
// values beyond ±2²⁴ and f64 values round to the nearest float32.
//
// The file is read in chunks and at most DefaultMaxBytes() of data is
// accepted, so a header that claims a huge size costs nothing until the
// data arrives. Errors are *DataError values with the byte offset of the
// problem (in the decompressed stream for a gzipped file): a bad magic
// number, an unsupported type, no or too many dimensions, a size over the
// cap, truncated data, bytes after the data, a NaN or infinite element.
func ReadIDX(r io.Reader) (shape []int, data []float32, err error) {
	f, err := readIDX(r, "idx", &budget{limit: DefaultMaxBytes()}, 4)
	if err != nil {
		return nil, nil, err
	}
	data, err = f.float32s(1)
	if err != nil {
		return nil, nil, err
	}
	return f.shape, data, nil
}

// ReadIDXBytes reads one IDX file of u8 elements, gzipped or not, as
// ReadIDX does, and returns its shape and its bytes as stored: a caller
// that keeps only some of the samples decodes only those. Errors are those
// of ReadIDX, and one for a file of another element type.
func ReadIDXBytes(r io.Reader) (shape []int, data []byte, err error) {
	f, err := readIDX(r, "idx", &budget{limit: DefaultMaxBytes()}, 0)
	if err != nil {
		return nil, nil, err
	}
	if f.typ != idxU8 {
		return nil, nil, f.errAt(2, "element type %s, want u8", idxTypeName(f.typ))
	}
	return f.shape, f.raw, nil
}

// readIDX reads and checks the header, the data and the end of the stream.
// Before reading the data it takes from mem the raw elements and decoded
// bytes more for each, what the caller's decoded form will hold, so that a
// header claiming too much is refused at once; the caller gives the raw
// part back (idxFile.release) once it has decoded it.
func readIDX(r io.Reader, name string, mem *budget, decoded int64) (*idxFile, error) {
	f, cr, need, err := readIDXHead(r, name, mem, decoded)
	if err != nil {
		return nil, err
	}
	f.mem, f.charged = mem, need

	f.raw = make([]byte, 0, min(need, idxChunk))
	for int64(len(f.raw)) < need {
		old := len(f.raw)
		// Grow to idxGrowth times what has arrived, so a header claiming
		// much costs little until the data is there, while a file of the
		// size it claims is copied little: MNIST's 47 MB of images arrive
		// in a buffer of 1 MiB, then 16 MiB, then the rest, and fresh
		// memory, which the system must zero page by page, costs as much
		// as the copies.
		chunk := int(min(need-int64(old), max(idxChunk, int64(old)*(idxGrowth-1))))
		f.raw = slices.Grow(f.raw, chunk)[:old+chunk]
		k, err := io.ReadFull(cr, f.raw[old:])
		if err != nil {
			f.raw = f.raw[:old+k]
			return nil, f.truncated(cr, err, need, int64(len(f.raw)))
		}
	}
	if err := f.checkEnd(cr, need); err != nil {
		return nil, err
	}
	return f, nil
}

// truncated is the error for data that ended early (or could not be
// read) after got of need bytes.
func (f *idxFile) truncated(cr *countingReader, err error, need, got int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return f.errAt(cr.n, "truncated data: shape %v of %s needs %d bytes of data, found %d",
			f.shape, idxTypeName(f.typ), need, got)
	}
	return f.errAt(cr.n, "reading data: %w", err)
}

// checkEnd checks that the stream ends after the need bytes of data:
// reading one byte past the end both finds trailing bytes and makes a
// gzip reader check its checksum.
func (f *idxFile) checkEnd(cr *countingReader, need int64) error {
	var one [1]byte
	switch k, err := io.ReadFull(cr, one[:]); {
	case k == 1:
		return f.errAt(f.dataOff+need, "trailing data after the %d bytes the header declares", need)
	case err != io.EOF:
		return f.errAt(cr.n, "after data: %w", err)
	}
	return nil
}

// readIDXHead reads and checks the header of an IDX stream, gunzipping it
// when it is gzipped, and takes from mem what its data will cost (see
// readIDX). It returns the stream positioned at the first element and the
// data's size in bytes.
func readIDXHead(r io.Reader, name string, mem *budget, decoded int64) (f *idxFile, cr *countingReader, need int64, err error) {
	f = &idxFile{name: name}
	zr, gz, err := maybeGunzip(r)
	f.gz = gz
	if err != nil {
		return nil, nil, 0, f.errAt(0, "%w", err)
	}
	cr = &countingReader{r: zr}
	short := func(what string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return f.errAt(cr.n, "truncated %s", what)
		}
		return f.errAt(cr.n, "reading %s: %w", what, err)
	}

	var magic [4]byte
	if _, err := io.ReadFull(cr, magic[:]); err != nil {
		return nil, nil, 0, short("header", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, nil, 0, f.errAt(0, "bad magic number % x, want 00 00 <type> <dimensions>", magic[:])
	}
	f.typ = magic[2]
	size := idxElemSize(f.typ)
	if size == 0 {
		return nil, nil, 0, f.errAt(2, "unsupported element type 0x%02x, want u8 (08), i8 (09), i16 (0b), i32 (0c), f32 (0d) or f64 (0e)", f.typ)
	}
	nd := int(magic[3])
	if nd == 0 || nd > maxIDXDims {
		return nil, nil, 0, f.errAt(3, "%d dimensions, want 1 to %d", nd, maxIDXDims)
	}

	dims := make([]byte, 4*nd)
	if _, err := io.ReadFull(cr, dims); err != nil {
		return nil, nil, 0, short("header", err)
	}
	f.shape = make([]int, nd)
	zero := false
	for i := range f.shape {
		d := binary.BigEndian.Uint32(dims[4*i:])
		f.shape[i] = int(d)
		zero = zero || d == 0
	}
	f.dataOff = int64(4 + 4*nd)

	// The raw bytes and the decoded copy must fit in the budget together.
	maxElems := (mem.limit - mem.used) / (int64(size) + decoded)
	n := int64(1)
	if zero {
		n = 0
	}
	for i, d := range f.shape {
		if zero {
			break
		}
		if int64(d) > maxElems/n {
			return nil, nil, 0, f.errAt(int64(4+4*i), "shape %v is %w: decoded, it passes the %s limit (%s)", f.shape, ErrTooLarge, formatBytes(mem.limit), mem.limitName())
		}
		n *= int64(d)
	}
	need = n * int64(size)
	mem.used += n * (int64(size) + decoded)
	return f, cr, need, nil
}

// ReadIDXRows reads an IDX file of u8 elements shaped [N, ...], gzipped
// or not, and calls fn with the bytes of each row (sample) whose index is
// in rows, in order; the other rows are read past, not kept, so a caller
// that needs a few samples of a large file holds only those. rows must be
// sorted, each index once. fn must not keep row, whose storage is reused.
// It returns the file's shape. Errors are those of ReadIDXBytes (the whole
// file is read and checked, its gzip checksum included) and one for an
// index out of range.
func ReadIDXRows(r io.Reader, rows []int, fn func(i int, row []byte)) (shape []int, err error) {
	f, cr, need, err := readIDXHead(r, "idx", &budget{limit: DefaultMaxBytes()}, 0)
	if err != nil {
		return nil, err
	}
	if f.typ != idxU8 {
		return nil, f.errAt(2, "element type %s, want u8", idxTypeName(f.typ))
	}
	n := f.shape[0]
	size := int64(1)
	for _, d := range f.shape[1:] {
		size *= int64(d)
	}
	if len(rows) > 0 && (rows[0] < 0 || rows[len(rows)-1] >= n) {
		return nil, fmt.Errorf("idx: rows %d to %d asked of a file of %d", rows[0], rows[len(rows)-1], n)
	}
	var row []byte
	if len(rows) > 0 {
		// Only now is size bounded: with a row to read the file has one,
		// and the header's whole size passed the budget. A file of no rows
		// may claim rows of any size.
		row = make([]byte, size)
	}
	var at int64 // bytes of data read
	for _, i := range rows {
		skip := int64(i)*size - at
		if skip < 0 {
			return nil, fmt.Errorf("idx: rows asked out of order (%d after a later one)", i)
		}
		if skip > 0 {
			k, err := io.CopyN(io.Discard, cr, skip)
			at += k
			if err != nil {
				return nil, f.truncated(cr, err, need, at)
			}
		}
		k, err := io.ReadFull(cr, row)
		at += int64(k)
		if err != nil {
			return nil, f.truncated(cr, err, need, at)
		}
		fn(i, row)
	}
	if k, err := io.CopyN(io.Discard, cr, need-at); err != nil {
		return nil, f.truncated(cr, err, need, at+k)
	}
	if err := f.checkEnd(cr, need); err != nil {
		return nil, err
	}
	return f.shape, nil
}

// float32s decodes the elements divided by div, refusing non-finite values.
func (f *idxFile) float32s(div float32) ([]float32, error) {
	size := idxElemSize(f.typ)
	out := make([]float32, len(f.raw)/size)
	b := f.raw
	if f.typ == idxU8 {
		// Bytes are always finite: a table of the 256 quotients decodes
		// them in a fraction of the general loop's time, to the same bits.
		var lut [256]float32
		for i := range lut {
			lut[i] = float32(i) / div
		}
		for i, v := range b[:len(out)] {
			out[i] = lut[v]
		}
		return out, nil
	}
	for i := range out {
		var v float32
		switch f.typ {
		case idxU8:
			v = float32(b[i])
		case idxI8:
			v = float32(int8(b[i]))
		case idxI16:
			v = float32(int16(binary.BigEndian.Uint16(b[2*i:])))
		case idxI32:
			v = float32(int32(binary.BigEndian.Uint32(b[4*i:])))
		case idxF32:
			v = math.Float32frombits(binary.BigEndian.Uint32(b[4*i:]))
		case idxF64:
			v = float32(math.Float64frombits(binary.BigEndian.Uint64(b[8*i:])))
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, f.errAt(f.dataOff+int64(i*size), "element %d is %v (not finite in float32)", i, v)
		}
		out[i] = v / div
	}
	return out, nil
}

// int decodes element i of an integer file.
func (f *idxFile) int(i int) int64 {
	b := f.raw
	switch f.typ {
	case idxU8:
		return int64(b[i])
	case idxI8:
		return int64(int8(b[i]))
	case idxI16:
		return int64(int16(binary.BigEndian.Uint16(b[2*i:])))
	case idxI32:
		return int64(int32(binary.BigEndian.Uint32(b[4*i:])))
	}
	panic("trainer: int of a float IDX file")
}

// readIDXFile opens and reads one IDX file, refusing one over the budget's
// limit before reading it; see readIDX for mem and decoded.
func readIDXFile(path string, mem *budget, decoded int64) (*idxFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if err := checkFileSize(fh, mem); err != nil {
		return nil, &DataError{File: path, Offset: -1, Err: err}
	}
	return readIDX(fh, path, mem, decoded)
}

// LoadIDX reads a pair of IDX files, samples and labels, gzipped or not, as
// MNIST ships them (train-images-idx3-ubyte and train-labels-idx1-ubyte).
//
// The images file has shape [N, ...]: samples of shape [H, W] become
// [1, H, W] (one channel, as a model's InputShape has it), other sample
// shapes stay as stored ([features], or [C, H, W]). u8 values are divided by
// 255 so pixels lie in [0,1]; other types keep their values.
//
// The labels file must hold N integers (u8, i8, i16 or i32), shaped [N] or
// [N, 1]. With opts.Classes set, a label indexes it; otherwise the classes
// are the label values present, in increasing order ("5", "7", "200" for
// labels 5, 7 and 200; at most 65536 of them), and labels that are all the
// same are refused (ErrTooFewClasses). opts.Label is ignored; opts.MaxBytes
// caps each file.
//
// Errors are *DataError values naming the file and the byte offset: those of
// ReadIDX, an images file with no sample dimensions or no samples, a labels
// file of the wrong shape or type, a count that differs from the images', and
// a negative or out-of-range label.
func LoadIDX(images, labels string, opts LoadOptions) (*Dataset, error) {
	mem := opts.budget()
	imf, err := readIDXFile(images, mem, 4)
	if err != nil {
		return nil, err
	}
	if len(imf.shape) < 2 {
		return nil, imf.errAt(3, "shape %v has no sample dimensions, want [N, ...] (is this a labels file?)", imf.shape)
	}
	n := imf.shape[0]
	if n == 0 {
		return nil, imf.errAt(4, "no samples")
	}
	shape := slices.Clone(imf.shape[1:])
	if numel(shape) == 0 {
		return nil, imf.errAt(8, "shape %v has empty samples", imf.shape)
	}
	if len(shape) == 2 {
		shape = []int{1, shape[0], shape[1]}
	}
	div := float32(1)
	if imf.typ == idxU8 {
		div = 255
	}
	x, err := imf.float32s(div)
	if err != nil {
		return nil, err
	}
	imf.release() // the float32 copy replaces it; let it go before the labels arrive

	lbf, err := readIDXFile(labels, mem, 8)
	if err != nil {
		return nil, err
	}
	switch lbf.typ {
	case idxU8, idxI8, idxI16, idxI32:
	default:
		return nil, lbf.errAt(2, "labels have type %s, want an integer type", idxTypeName(lbf.typ))
	}
	if len(lbf.shape) > 2 || len(lbf.shape) == 2 && lbf.shape[1] != 1 {
		return nil, lbf.errAt(3, "labels have shape %v, want [N] or [N 1]", lbf.shape)
	}
	if lbf.shape[0] != n {
		return nil, lbf.errAt(4, "%d labels for the %d samples of %s", lbf.shape[0], n, images)
	}

	size := int64(idxElemSize(lbf.typ))
	y := make([]int, n)
	// Without a class list, labels get ids in order of appearance here and
	// the sorted label values replace them at the end.
	ids := make(map[int64]int)
	var values []int64
	for i := range y {
		v := lbf.int(i)
		off := lbf.dataOff + int64(i)*size
		if opts.Classes != nil {
			if v < 0 || v >= int64(len(opts.Classes)) {
				return nil, lbf.errAt(off, "label %d of sample %d is out of range for %d classes", v, i, len(opts.Classes))
			}
			y[i] = int(v)
			continue
		}
		if v < 0 {
			return nil, lbf.errAt(off, "label %d of sample %d is negative", v, i)
		}
		id, ok := ids[v]
		if !ok {
			if err := mem.take(idxClassCost); err != nil {
				return nil, lbf.errAt(off, "label %d of sample %d: %w", v, i, err)
			}
			if len(values) == maxIDXClasses {
				return nil, lbf.errAt(off, "label %d of sample %d is the %d-th distinct label, more than the %d classes allowed", v, i, maxIDXClasses+1, maxIDXClasses)
			}
			id = len(values)
			ids[v] = id
			values = append(values, v)
		}
		y[i] = id
	}

	classes := slices.Clone(opts.Classes)
	if classes == nil {
		sorted := slices.Clone(values)
		slices.Sort(sorted)
		classes = make([]string, len(sorted))
		for i, v := range sorted {
			classes[i] = strconv.FormatInt(v, 10)
		}
		remap := make([]int, len(values))
		for i, v := range values {
			remap[i], _ = slices.BinarySearch(sorted, v)
		}
		for i, id := range y {
			y[i] = remap[id]
		}
	}
	ds := &Dataset{Name: filepath.Base(images), Shape: shape, X: x, Y: y, Classes: classes}
	if err := ds.Validate(); err != nil {
		// Only names in opts.Classes can get here.
		return nil, err
	}
	if err := checkLoaded(labels, ds.ClassCounts(), classes, opts.Classes != nil); err != nil {
		return nil, err
	}
	return ds, nil
}

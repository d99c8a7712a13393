// Package safetensors reads, validates and writes Hugging Face's
// safetensors files (https://github.com/huggingface/safetensors), the
// format of thaw's weights and checkpoints. It knows the file format only;
// package trainer converts its tensors to and from trainer's.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Safetensors is Hugging Face's weight format
// (https://github.com/huggingface/safetensors, README "Format"):
//
//	8 bytes    N, the header length, a little-endian uint64
//	N bytes    a UTF-8 JSON object, possibly padded with trailing spaces:
//	           {"__metadata__": {"k": "v", ...},
//	            "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
//	rest       the byte buffer; data_offsets are relative to its start
//
// Tensors are little-endian, row-major and packed: sorted by offset they
// start at 0, follow each other without gaps or overlaps, and end exactly at
// the end of the file. The reader here enforces all of that, as the
// reference implementation's validation does.

// The dtypes thaw reads and writes. Float tensors of any of the float types
// load into a model of either precision; I64 holds integer buffers such as
// BatchNorm's num_batches_tracked.
const (
	F32  = "F32"
	F64  = "F64"
	F16  = "F16"  // IEEE 754 binary16
	BF16 = "BF16" // bfloat16: the top half of a float32
	I64  = "I64"
)

// maxHeader caps the JSON header, as the reference implementation does
// (MAX_HEADER_SIZE = 100_000_000), so a corrupt length cannot make the reader
// allocate gigabytes.
const maxHeader = 100_000_000

// metadataKey is the reserved header key for the string→string metadata.
const metadataKey = "__metadata__"

// Size returns the element size in bytes of a supported dtype, or 0.
func Size(dtype string) int {
	switch dtype {
	case F64, I64:
		return 8
	case F32:
		return 4
	case F16, BF16:
		return 2
	}
	return 0
}

// knownDTypes are the other dtypes of the format: recognised so that the
// error says "not supported" rather than "unknown".
var knownDTypes = []string{"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "I32", "U32", "U64", "C64", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"}

// Tensor is one tensor of a safetensors file, kept as the file stores
// it so that reading and writing it again is lossless in every dtype.
type Tensor struct {
	// Name is the state-dict key, such as "features.0.weight".
	Name string
	// DType is one of the DType constants.
	DType string
	// Shape is the PyTorch shape; empty for a scalar, which has one element.
	Shape []int
	// Data holds the elements, little-endian and row-major: exactly
	// numel(Shape) × the dtype's size bytes.
	Data []byte
}

// File is the content of a safetensors file.
type File struct {
	// Tensors in the order of their data in the file.
	Tensors []Tensor
	// Metadata is the header's "__metadata__"; nil when there is none.
	Metadata map[string]string
}

// Tensor returns the tensor with the given name, or nil if there is none.
func (f *File) Tensor(name string) *Tensor {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// FormatError reports a safetensors file, or a tensor given to the writer,
// that breaks the format. Errors from the readers and the writer about the
// content (not I/O) are of this type.
type FormatError struct {
	// Path is the file, when known.
	Path string
	// Tensor names the tensor at fault; empty when the problem is the
	// file's as a whole (its length, its header's syntax).
	Tensor string
	// Msg says what is wrong.
	Msg string
}

func (e *FormatError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString("safetensors: ")
	if e.Tensor != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.Tensor)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns a *FormatError about tensor (empty for the file as a
// whole) with a formatted message.
func Errorf(tensor, format string, args ...any) *FormatError {
	return &FormatError{Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}

// WithPath sets the path of a *FormatError, or prefixes another error with
// it.
func WithPath(path string, err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Path = path
		return fe
	}
	return fmt.Errorf("%s: %w", path, err)
}

// ReadFile reads and validates the safetensors file at path.
// Errors name the file and, where there is one, the tensor.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sf, err := Read(f, st.Size())
	if err != nil {
		return nil, WithPath(path, err)
	}
	return sf, nil
}

// ReadFS is ReadFile for a file of fsys, such as the
// embedded zoo. Errors name the file by its name in fsys.
func ReadFS(fsys fs.FS, name string) (*File, error) {
	sf, err := readFS(fsys, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err // names the file already
		}
		return nil, WithPath(name, err)
	}
	return sf, nil
}

// readFS reads name of fsys; errors other than from opening it
// do not name the file.
func readFS(fsys fs.FS, name string) (*File, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if r, ok := f.(io.ReaderAt); ok {
		return Read(r, st.Size())
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return Read(bytes.NewReader(b), int64(len(b)))
}

// Read reads and validates a safetensors file of size bytes from
// r. Every breach of the format is a *FormatError naming the tensor at
// fault: a header length over 100 MB or past the end of the file, a header
// that is not a UTF-8 JSON object, duplicate names, unsupported dtypes,
// shapes whose size disagrees with their data_offsets, offsets that are out
// of order, overlap, leave gaps or stop short of the end of the file, and
// metadata values that are not strings. Sizes are checked against size
// before anything the header declares is allocated. An r that ends before
// size gives an error wrapping io.ErrUnexpectedEOF.
func Read(r io.ReaderAt, size int64) (*File, error) {
	if size < 8 {
		return nil, Errorf("", "file is %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	// size ≥ 8, so size-8 cannot underflow, and comparing n against it
	// avoids computing n+8, which can overflow.
	if n > maxHeader {
		return nil, Errorf("", "header length %d exceeds the %d-byte limit", n, maxHeader)
	}
	if n > uint64(size-8) {
		return nil, Errorf("", "header length %d runs past the end of the %d-byte file", n, size)
	}
	header := make([]byte, n)
	if err := readFull(r, header, 8); err != nil {
		return nil, err
	}
	bufLen := uint64(size) - 8 - n
	sf, infos, err := parseHeader(header, bufLen)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(infos, bufLen); err != nil {
		return nil, err
	}

	// The layout covers the buffer exactly, so it is no larger than the
	// file: safe to allocate.
	buf := make([]byte, bufLen)
	if err := readFull(r, buf, int64(8+n)); err != nil {
		return nil, err
	}
	sf.Tensors = make([]Tensor, len(infos))
	for i, in := range infos {
		sf.Tensors[i] = Tensor{Name: in.name, DType: in.dtype, Shape: in.shape, Data: buf[in.begin:in.end:in.end]}
	}
	return sf, nil
}

// readFull reads len(p) bytes at off, reporting a short file as
// io.ErrUnexpectedEOF.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("safetensors: read %d bytes at offset %d: %w", len(p), off, err)
}

// tensorInfo is one tensor's header entry.
type tensorInfo struct {
	name       string
	dtype      string
	shape      []int
	begin, end uint64
}

// parseHeader decodes the JSON header. It walks the tokens itself rather
// than unmarshalling into a map, because encoding/json keeps the last of
// duplicate keys silently and the format forbids them.
func parseHeader(header []byte, bufLen uint64) (*File, []tensorInfo, error) {
	if !utf8.Valid(header) {
		return nil, nil, Errorf("", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	sf := &File{}
	var infos []tensorInfo
	seen := map[string]bool{}
	// current names the tensor being parsed so that syntax errors in its
	// entry name it.
	current := ""
	syntax := func(err error) error {
		return Errorf(current, "header: invalid JSON near byte %d: %v", dec.InputOffset(), err)
	}

	tok, err := dec.Token()
	if err != nil {
		return nil, nil, syntax(err)
	}
	if tok != json.Delim('{') {
		return nil, nil, Errorf("", "header is not a JSON object (starts with %v)", tokenString(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, syntax(err)
		}
		name := tok.(string) // object keys are always strings
		current = name
		if seen[name] {
			return nil, nil, Errorf(name, "appears twice in the header")
		}
		seen[name] = true
		if name == metadataKey {
			current = ""
			md, err := parseMetadata(dec)
			if err != nil {
				return nil, nil, err
			}
			sf.Metadata = md
			continue
		}
		in, err := parseTensorInfo(dec, name, bufLen)
		if err != nil {
			return nil, nil, err
		}
		infos = append(infos, in)
	}
	current = ""
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, syntax(err)
	}
	// Only the padding may follow the object.
	if rest := header[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return nil, nil, Errorf("", "header has data after its JSON object at byte %d", dec.InputOffset())
	}
	return sf, infos, nil
}

// parseMetadata decodes the "__metadata__" object: string keys, string
// values, no duplicates.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	bad := func(format string, args ...any) error {
		return Errorf("", "header: %s: %s", metadataKey, fmt.Sprintf(format, args...))
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("invalid JSON: %v", err)
	}
	if tok != json.Delim('{') {
		return nil, bad("is %s, want an object of strings", tokenString(tok))
	}
	md := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("invalid JSON: %v", err)
		}
		k := tok.(string)
		if _, dup := md[k]; dup {
			return nil, bad("key %q appears twice", k)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, bad("key %q: invalid JSON: %v", k, err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, bad("key %q is %s, want a string", k, tokenString(tok))
		}
		md[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("invalid JSON: %v", err)
	}
	return md, nil
}

// parseTensorInfo decodes one tensor's entry and checks it on its own:
// supported dtype, shape of non-negative integers whose byte size matches
// data_offsets, offsets within a buffer of bufLen bytes.
func parseTensorInfo(dec *json.Decoder, name string, bufLen uint64) (tensorInfo, error) {
	in := tensorInfo{name: name}
	bad := func(format string, args ...any) error { return Errorf(name, format, args...) }
	tok, err := dec.Token()
	if err != nil {
		return in, bad("header: invalid JSON: %v", err)
	}
	if tok != json.Delim('{') {
		return in, bad("entry is %s, want an object with dtype, shape and data_offsets", tokenString(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return in, bad("header: invalid JSON: %v", err)
		}
		field := tok.(string)
		switch field {
		case "dtype":
			if haveDType {
				return in, bad("dtype appears twice")
			}
			haveDType = true
			tok, err := dec.Token()
			if err != nil {
				return in, bad("dtype: invalid JSON: %v", err)
			}
			s, ok := tok.(string)
			if !ok {
				return in, bad("dtype is %s, want a string", tokenString(tok))
			}
			if Size(s) == 0 {
				return in, Unsupported(name, s)
			}
			in.dtype = s
		case "shape":
			if haveShape {
				return in, bad("shape appears twice")
			}
			haveShape = true
			dims, err := parseUints(dec)
			if err != nil {
				return in, bad("shape: %v", err)
			}
			in.shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt64 {
					return in, bad("shape %v: dimension %d is too large", dims, d)
				}
				in.shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return in, bad("data_offsets appears twice")
			}
			haveOffsets = true
			offs, err := parseUints(dec)
			if err != nil {
				return in, bad("data_offsets: %v", err)
			}
			if len(offs) != 2 {
				return in, bad("data_offsets has %d numbers, want [begin, end]", len(offs))
			}
			in.begin, in.end = offs[0], offs[1]
		default:
			return in, bad("unknown field %q (want dtype, shape, data_offsets)", field)
		}
	}
	if _, err := dec.Token(); err != nil {
		return in, bad("header: invalid JSON: %v", err)
	}
	switch {
	case !haveDType:
		return in, bad("no dtype")
	case !haveShape:
		return in, bad("no shape")
	case !haveOffsets:
		return in, bad("no data_offsets")
	}
	if in.begin > in.end {
		return in, bad("data_offsets [%d, %d] end before they begin", in.begin, in.end)
	}
	if in.end > bufLen {
		return in, bad("data_offsets [%d, %d] run past the %d-byte data buffer (file truncated?)", in.begin, in.end, bufLen)
	}
	nbytes, ok := ByteSize(in.shape, in.dtype)
	if !ok {
		return in, bad("shape %v of %s overflows", in.shape, in.dtype)
	}
	if nbytes != in.end-in.begin {
		return in, bad("shape %v of %s needs %d bytes, data_offsets [%d, %d] hold %d", in.shape, in.dtype, nbytes, in.begin, in.end, in.end-in.begin)
	}
	return in, nil
}

// Unsupported returns the *FormatError of a tensor whose dtype thaw does
// not read: "not supported" for the format's other dtypes, "unknown"
// otherwise.
func Unsupported(name, dtype string) error {
	if slices.Contains(knownDTypes, dtype) {
		return Errorf(name, "dtype %s is not supported (want F32, F64, F16, BF16 or I64)", dtype)
	}
	return Errorf(name, "unknown dtype %q", dtype)
}

// parseUints decodes a JSON array of non-negative integers. Fractions,
// exponents, negatives and values beyond uint64 are errors.
func parseUints(dec *json.Decoder) ([]uint64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("is %s, want an array of integers", tokenString(tok))
	}
	out := []uint64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, want a non-negative integer", len(out), tokenString(tok))
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d is %s, want a non-negative integer", len(out), num)
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	return out, nil
}

// tokenString describes a JSON token for an error message.
func tokenString(tok any) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + string(v)
	case bool:
		return fmt.Sprintf("%v", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// ByteSize returns numel(shape) × the dtype's size, and false if that
// overflows. Like the reference implementation it multiplies left to right,
// so [2^40, 2^40, 0] overflows even though it has no elements.
func ByteSize(shape []int, dtype string) (uint64, bool) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	hi, lo := bits.Mul64(n, uint64(Size(dtype)))
	return lo, hi == 0 && lo <= math.MaxInt64
}

// checkLayout checks that the tensors, sorted by offset, tile the buffer of
// bufLen bytes from 0 to its end. It sorts infos into that order.
func checkLayout(infos []tensorInfo, bufLen uint64) error {
	// Ties (empty tensors at one offset) are broken by name so that the
	// order does not depend on the header's.
	sort.Slice(infos, func(i, j int) bool {
		a, b := infos[i], infos[j]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.name < b.name
	})
	var pos uint64
	prev := ""
	for i, in := range infos {
		switch {
		case in.begin > pos && i == 0:
			return Errorf(in.name, "data_offsets [%d, %d] leave bytes [0, %d) of the buffer unused; the first tensor must start at 0", in.begin, in.end, in.begin)
		case in.begin > pos:
			return Errorf(in.name, "data_offsets [%d, %d] leave a gap of %d bytes after tensor %q, which ends at %d", in.begin, in.end, in.begin-pos, prev, pos)
		case in.begin < pos:
			return Errorf(in.name, "data_offsets [%d, %d] overlap tensor %q, which ends at %d", in.begin, in.end, prev, pos)
		}
		pos = in.end
		prev = in.name
	}
	if pos != bufLen {
		if len(infos) == 0 {
			return Errorf("", "no tensors, but %d bytes of data after the header", bufLen)
		}
		return Errorf(prev, "is the last tensor and ends at %d, but the data buffer has %d bytes (%d trailing bytes)", pos, bufLen, bufLen-pos)
	}
	return nil
}

// Write writes tensors, in the given order, and metadata (nil
// or empty for none) to w as a safetensors file. The header is padded with
// spaces to a multiple of 8 bytes so that the data is aligned, as the
// reference writer does. It returns a *FormatError naming the tensor if a
// name is repeated, is "__metadata__" or is not UTF-8, if a dtype is not
// supported, or if a tensor's Data does not hold exactly its shape's bytes.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	bw.Write(lenBuf[:])
	bw.Write(header)
	for _, t := range tensors {
		bw.Write(t.Data)
	}
	return bw.Flush() // bufio keeps the first write error
}

// encodeHeader builds the padded JSON header, checking each tensor.
func encodeHeader(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	sep := func() {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
	}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range keys {
			v := metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, Errorf("", "%s: key %q or its value is not valid UTF-8", metadataKey, k)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, v)
		}
		b.WriteByte('}')
	}
	seen := map[string]bool{}
	var off uint64
	for _, t := range tensors {
		switch {
		case t.Name == metadataKey:
			return nil, Errorf(t.Name, "the name is reserved for metadata")
		case !utf8.ValidString(t.Name):
			return nil, Errorf(t.Name, "the name is not valid UTF-8")
		case seen[t.Name]:
			return nil, Errorf(t.Name, "appears twice")
		case Size(t.DType) == 0:
			return nil, Unsupported(t.Name, t.DType)
		}
		seen[t.Name] = true
		n, ok := ByteSize(t.Shape, t.DType)
		if !ok {
			return nil, Errorf(t.Name, "shape %v of %s is negative or overflows", t.Shape, t.DType)
		}
		if n != uint64(len(t.Data)) {
			return nil, Errorf(t.Name, "shape %v of %s needs %d bytes, Data has %d", t.Shape, t.DType, n, len(t.Data))
		}
		sep()
		writeJSONString(&b, t.Name)
		fmt.Fprintf(&b, `:{"dtype":%q,"shape":[`, t.DType)
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > maxHeader {
		return nil, Errorf("", "header of %d bytes exceeds the %d-byte limit", b.Len(), maxHeader)
	}
	return b.Bytes(), nil
}

// writeJSONString writes s as a JSON string. HTML escaping is off: the
// header is not embedded in HTML, and readers need not see \u003c for <.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	// A string cannot fail to encode; Encode appends a newline.
	enc.Encode(s)
	b.Truncate(b.Len() - 1)
}

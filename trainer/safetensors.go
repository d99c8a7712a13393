package trainer

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
	DTypeF32  = "F32"
	DTypeF64  = "F64"
	DTypeF16  = "F16"  // IEEE 754 binary16
	DTypeBF16 = "BF16" // bfloat16: the top half of a float32
	DTypeI64  = "I64"
)

// maxHeader caps the JSON header, as the reference implementation does
// (MAX_HEADER_SIZE = 100_000_000), so a corrupt length cannot make the reader
// allocate gigabytes.
const maxHeader = 100_000_000

// metadataKey is the reserved header key for the string→string metadata.
const metadataKey = "__metadata__"

// dtypeSize returns the element size in bytes of a supported dtype, or 0.
func dtypeSize(dtype string) int {
	switch dtype {
	case DTypeF64, DTypeI64:
		return 8
	case DTypeF32:
		return 4
	case DTypeF16, DTypeBF16:
		return 2
	}
	return 0
}

// knownDTypes are the other dtypes of the format: recognised so that the
// error says "not supported" rather than "unknown".
var knownDTypes = []string{"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "I32", "U32", "U64", "C64", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"}

// SafeTensor is one tensor of a safetensors file, kept as the file stores
// it so that reading and writing it again is lossless in every dtype.
type SafeTensor struct {
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

// SafeFile is the content of a safetensors file.
type SafeFile struct {
	// Tensors in the order of their data in the file.
	Tensors []SafeTensor
	// Metadata is the header's "__metadata__"; nil when there is none.
	Metadata map[string]string
}

// Tensor returns the tensor with the given name, or nil if there is none.
func (f *SafeFile) Tensor(name string) *SafeTensor {
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

func formatErr(tensor, format string, args ...any) *FormatError {
	return &FormatError{Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}

// withPath sets the path of a *FormatError, or prefixes another error with
// it.
func withPath(path string, err error) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Path = path
		return fe
	}
	return fmt.Errorf("%s: %w", path, err)
}

// ReadSafetensorsFile reads and validates the safetensors file at path.
// Errors name the file and, where there is one, the tensor.
func ReadSafetensorsFile(path string) (*SafeFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sf, err := ReadSafetensors(f, st.Size())
	if err != nil {
		return nil, withPath(path, err)
	}
	return sf, nil
}

// ReadSafetensorsFS is ReadSafetensorsFile for a file of fsys, such as the
// embedded zoo. Errors name the file by its name in fsys.
func ReadSafetensorsFS(fsys fs.FS, name string) (*SafeFile, error) {
	sf, err := readSafetensorsFS(fsys, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err // names the file already
		}
		return nil, withPath(name, err)
	}
	return sf, nil
}

// readSafetensorsFS reads name of fsys; errors other than from opening it
// do not name the file.
func readSafetensorsFS(fsys fs.FS, name string) (*SafeFile, error) {
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
		return ReadSafetensors(r, st.Size())
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return ReadSafetensors(bytes.NewReader(b), int64(len(b)))
}

// ReadSafetensors reads and validates a safetensors file of size bytes from
// r. Every breach of the format is a *FormatError naming the tensor at
// fault: a header length over 100 MB or past the end of the file, a header
// that is not a UTF-8 JSON object, duplicate names, unsupported dtypes,
// shapes whose size disagrees with their data_offsets, offsets that are out
// of order, overlap, leave gaps or stop short of the end of the file, and
// metadata values that are not strings. Sizes are checked against size
// before anything the header declares is allocated. An r that ends before
// size gives an error wrapping io.ErrUnexpectedEOF.
func ReadSafetensors(r io.ReaderAt, size int64) (*SafeFile, error) {
	if size < 8 {
		return nil, formatErr("", "file is %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	// size ≥ 8, so size-8 cannot underflow, and comparing n against it
	// avoids computing n+8, which can overflow.
	if n > maxHeader {
		return nil, formatErr("", "header length %d exceeds the %d-byte limit", n, maxHeader)
	}
	if n > uint64(size-8) {
		return nil, formatErr("", "header length %d runs past the end of the %d-byte file", n, size)
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
	sf.Tensors = make([]SafeTensor, len(infos))
	for i, in := range infos {
		sf.Tensors[i] = SafeTensor{Name: in.name, DType: in.dtype, Shape: in.shape, Data: buf[in.begin:in.end:in.end]}
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
func parseHeader(header []byte, bufLen uint64) (*SafeFile, []tensorInfo, error) {
	if !utf8.Valid(header) {
		return nil, nil, formatErr("", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	sf := &SafeFile{}
	var infos []tensorInfo
	seen := map[string]bool{}
	// current names the tensor being parsed so that syntax errors in its
	// entry name it.
	current := ""
	syntax := func(err error) error {
		return formatErr(current, "header: invalid JSON near byte %d: %v", dec.InputOffset(), err)
	}

	tok, err := dec.Token()
	if err != nil {
		return nil, nil, syntax(err)
	}
	if tok != json.Delim('{') {
		return nil, nil, formatErr("", "header is not a JSON object (starts with %v)", tokenString(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, syntax(err)
		}
		name := tok.(string) // object keys are always strings
		current = name
		if seen[name] {
			return nil, nil, formatErr(name, "appears twice in the header")
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
		return nil, nil, formatErr("", "header has data after its JSON object at byte %d", dec.InputOffset())
	}
	return sf, infos, nil
}

// parseMetadata decodes the "__metadata__" object: string keys, string
// values, no duplicates.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	bad := func(format string, args ...any) error {
		return formatErr("", "header: %s: %s", metadataKey, fmt.Sprintf(format, args...))
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
	bad := func(format string, args ...any) error { return formatErr(name, format, args...) }
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
			if dtypeSize(s) == 0 {
				return in, unsupportedDType(name, s)
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
	nbytes, ok := byteSize(in.shape, in.dtype)
	if !ok {
		return in, bad("shape %v of %s overflows", in.shape, in.dtype)
	}
	if nbytes != in.end-in.begin {
		return in, bad("shape %v of %s needs %d bytes, data_offsets [%d, %d] hold %d", in.shape, in.dtype, nbytes, in.begin, in.end, in.end-in.begin)
	}
	return in, nil
}

func unsupportedDType(name, dtype string) error {
	if slices.Contains(knownDTypes, dtype) {
		return formatErr(name, "dtype %s is not supported (want F32, F64, F16, BF16 or I64)", dtype)
	}
	return formatErr(name, "unknown dtype %q", dtype)
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

// byteSize returns numel(shape) × the dtype's size, and false if that
// overflows. Like the reference implementation it multiplies left to right,
// so [2^40, 2^40, 0] overflows even though it has no elements.
func byteSize(shape []int, dtype string) (uint64, bool) {
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
	hi, lo := bits.Mul64(n, uint64(dtypeSize(dtype)))
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
			return formatErr(in.name, "data_offsets [%d, %d] leave bytes [0, %d) of the buffer unused; the first tensor must start at 0", in.begin, in.end, in.begin)
		case in.begin > pos:
			return formatErr(in.name, "data_offsets [%d, %d] leave a gap of %d bytes after tensor %q, which ends at %d", in.begin, in.end, in.begin-pos, prev, pos)
		case in.begin < pos:
			return formatErr(in.name, "data_offsets [%d, %d] overlap tensor %q, which ends at %d", in.begin, in.end, prev, pos)
		}
		pos = in.end
		prev = in.name
	}
	if pos != bufLen {
		if len(infos) == 0 {
			return formatErr("", "no tensors, but %d bytes of data after the header", bufLen)
		}
		return formatErr(prev, "is the last tensor and ends at %d, but the data buffer has %d bytes (%d trailing bytes)", pos, bufLen, bufLen-pos)
	}
	return nil
}

// WriteSafetensors writes tensors, in the given order, and metadata (nil
// or empty for none) to w as a safetensors file. The header is padded with
// spaces to a multiple of 8 bytes so that the data is aligned, as the
// reference writer does. It returns a *FormatError naming the tensor if a
// name is repeated, is "__metadata__" or is not UTF-8, if a dtype is not
// supported, or if a tensor's Data does not hold exactly its shape's bytes.
func WriteSafetensors(w io.Writer, tensors []SafeTensor, metadata map[string]string) error {
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
func encodeHeader(tensors []SafeTensor, metadata map[string]string) ([]byte, error) {
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
				return nil, formatErr("", "%s: key %q or its value is not valid UTF-8", metadataKey, k)
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
			return nil, formatErr(t.Name, "the name is reserved for metadata")
		case !utf8.ValidString(t.Name):
			return nil, formatErr(t.Name, "the name is not valid UTF-8")
		case seen[t.Name]:
			return nil, formatErr(t.Name, "appears twice")
		case dtypeSize(t.DType) == 0:
			return nil, unsupportedDType(t.Name, t.DType)
		}
		seen[t.Name] = true
		n, ok := byteSize(t.Shape, t.DType)
		if !ok {
			return nil, formatErr(t.Name, "shape %v of %s is negative or overflows", t.Shape, t.DType)
		}
		if n != uint64(len(t.Data)) {
			return nil, formatErr(t.Name, "shape %v of %s needs %d bytes, Data has %d", t.Shape, t.DType, n, len(t.Data))
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
		return nil, formatErr("", "header of %d bytes exceeds the %d-byte limit", b.Len(), maxHeader)
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

// ToTensor decodes st into a new tensor of element type T. F32, F64, F16
// and BF16 convert exactly into float64, and exactly into float32 except
// F64, which rounds to nearest. I64 converts to the nearest float, which is
// exact up to 2^53 in float64 and 2^24 in float32. It returns an error
// naming the tensor if its dtype is not supported or its Data does not
// match its shape.
func ToTensor[T Float](st *SafeTensor) (*Tensor[T], error) {
	n, ok := byteSize(st.Shape, st.DType)
	switch {
	case dtypeSize(st.DType) == 0:
		return nil, unsupportedDType(st.Name, st.DType)
	case !ok:
		return nil, formatErr(st.Name, "shape %v of %s is negative or overflows", st.Shape, st.DType)
	case n != uint64(len(st.Data)):
		return nil, formatErr(st.Name, "shape %v of %s needs %d bytes, Data has %d", st.Shape, st.DType, n, len(st.Data))
	}
	t := &Tensor[T]{Shape: slices.Clone(st.Shape), Data: make([]T, len(st.Data)/dtypeSize(st.DType))}
	if t.Shape == nil {
		t.Shape = []int{}
	}
	decodeInto(t.Data, st.DType, st.Data)
	return t, nil
}

// decodeInto converts the little-endian elements of src, of a supported
// dtype, into dst, which has exactly one slot per element.
func decodeInto[T Float](dst []T, dtype string, src []byte) {
	le := binary.LittleEndian
	switch dtype {
	case DTypeF32:
		for i := range dst {
			dst[i] = T(math.Float32frombits(le.Uint32(src[4*i:])))
		}
	case DTypeF64:
		for i := range dst {
			dst[i] = T(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case DTypeF16:
		for i := range dst {
			dst[i] = T(f16ToFloat32(le.Uint16(src[2*i:])))
		}
	case DTypeBF16:
		for i := range dst {
			dst[i] = T(bf16ToFloat32(le.Uint16(src[2*i:])))
		}
	case DTypeI64:
		for i := range dst {
			dst[i] = T(int64(le.Uint64(src[8*i:])))
		}
	default:
		panic("trainer: decode of unsupported dtype " + dtype)
	}
}

// FromTensor encodes t as a tensor named name of the given dtype. Floats
// round to nearest even when the dtype is narrower than T (F16, BF16, or F32
// from float64); NaN and ±Inf are kept. For I64 every value must be an
// integer within int64's range, or FromTensor returns an error naming the
// tensor; it also returns one for an unsupported dtype.
func FromTensor[T Float](name string, t *Tensor[T], dtype string) (SafeTensor, error) {
	size := dtypeSize(dtype)
	if size == 0 {
		return SafeTensor{}, unsupportedDType(name, dtype)
	}
	st := SafeTensor{Name: name, DType: dtype, Shape: slices.Clone(t.Shape), Data: make([]byte, size*len(t.Data))}
	if st.Shape == nil {
		st.Shape = []int{}
	}
	le := binary.LittleEndian
	for i, v := range t.Data {
		f := float64(v)
		switch dtype {
		case DTypeF32:
			le.PutUint32(st.Data[4*i:], math.Float32bits(float32(v)))
		case DTypeF64:
			le.PutUint64(st.Data[8*i:], math.Float64bits(f))
		case DTypeF16:
			le.PutUint16(st.Data[2*i:], float64ToF16(f))
		case DTypeBF16:
			le.PutUint16(st.Data[2*i:], float64ToBF16(f))
		case DTypeI64:
			// 2^63 is exactly representable; the largest int64 is not.
			if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
				return SafeTensor{}, formatErr(name, "element %d is %v, not an int64", i, f)
			}
			le.PutUint64(st.Data[8*i:], uint64(int64(f)))
		}
	}
	return st, nil
}

// Half-precision conversions. Both small formats are IEEE-style binary
// floats: sign, eb exponent bits with bias 2^(eb-1)-1, mb mantissa bits,
// subnormals when the exponent field is 0, and Inf/NaN when it is all ones.
// binary16 has eb=5, mb=10 (IEEE 754-2008 §3.6); bfloat16 has eb=8, mb=7
// (the top half of a binary32).

func f16ToFloat32(h uint16) float32 { return float32(smallToFloat64(uint32(h), 5, 10)) }

// bf16ToFloat32 is exact by construction: bfloat16 is a truncated float32.
func bf16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func float64ToF16(f float64) uint16  { return uint16(float64ToSmall(f, 5, 10)) }
func float64ToBF16(f float64) uint16 { return uint16(float64ToSmall(f, 8, 7)) }

// smallToFloat64 decodes a small float; every value is exact in float64.
// A NaN keeps its sign and payload, moved to the top of float64's mantissa.
func smallToFloat64(x uint32, eb, mb uint) float64 {
	bias := 1<<(eb-1) - 1
	expMax := uint32(1)<<eb - 1
	sign := x >> (eb + mb) & 1
	e := x >> mb & expMax
	m := x & (1<<mb - 1)
	var v float64
	switch e {
	case expMax:
		if m == 0 {
			v = math.Inf(1)
		} else {
			return math.Float64frombits(uint64(sign)<<63 | 0x7ff<<52 | uint64(m)<<(52-mb))
		}
	case 0:
		v = math.Ldexp(float64(m), 1-bias-int(mb))
	default:
		v = math.Ldexp(float64(1<<mb|m), int(e)-bias-int(mb))
	}
	if sign != 0 {
		v = -v
	}
	return v
}

// float64ToSmall encodes f as a small float, rounding to nearest, ties to
// even. Rounding straight from float64 avoids the double rounding of going
// through float32. Values at or past the midpoint between the largest
// finite value and the next power of two become ±Inf. A NaN stays a NaN
// with its sign and the top of its payload, made quiet.
func float64ToSmall(f float64, eb, mb uint) uint32 {
	bias := 1<<(eb-1) - 1
	emin := 1 - bias // exponent of the smallest normal
	expMax := uint32(1)<<eb - 1
	var sign uint32
	if math.Signbit(f) {
		sign = 1 << (eb + mb)
	}
	a := math.Abs(f)
	switch {
	case math.IsNaN(f):
		payload := uint32(math.Float64bits(f)>>(52-mb)) & (1<<mb - 1)
		return sign | expMax<<mb | 1<<(mb-1) | payload
	case math.IsInf(f, 0):
		return sign | expMax<<mb
	case a < math.Ldexp(1, emin):
		// Subnormal: a count of the smallest step 2^(emin-mb). Scaling by
		// a power of two is exact, so only RoundToEven rounds. A result of
		// 2^mb is the smallest normal, whose encoding it already is.
		return sign | uint32(math.RoundToEven(math.Ldexp(a, int(mb)-emin)))
	}
	_, exp := math.Frexp(a) // a = frac × 2^exp, frac in [0.5, 1)
	e := exp - 1
	// r in [2^mb, 2^(mb+1)] is the significand with its implicit bit;
	// adding it to the biased exponent lets a round-up carry into the
	// exponent field.
	r := uint64(math.RoundToEven(math.Ldexp(a, int(mb)-e)))
	enc := uint64(e+bias-1)<<mb + r
	if enc >= uint64(expMax)<<mb {
		return sign | expMax<<mb
	}
	return sign | uint32(enc)
}

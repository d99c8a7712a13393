package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// rawFile builds a safetensors file from a header and a data buffer,
// without any of the writer's checks.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func readBytes(b []byte) (*File, error) {
	return Read(bytes.NewReader(b), int64(len(b)))
}

func mustWrite(t *testing.T, tensors []Tensor, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, md); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validFile is a correct two-tensor file for the truncation tests.
func validFile(t *testing.T) []byte {
	return mustWrite(t, []Tensor{
		{Name: "x.weight", DType: F32, Shape: []int{2, 2}, Data: f32s(1, 2, 3, 4)},
		{Name: "y.bias", DType: F32, Shape: []int{3}, Data: f32s(5, 6, 7)},
	}, map[string]string{"format": "pt"})
}

// f32s encodes values as little-endian F32 data.
func f32s(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestTruncated(t *testing.T) {
	b := validFile(t)
	hlen := int(binary.LittleEndian.Uint64(b))
	for _, c := range []struct {
		name string
		n    int
		want string
	}{
		{"empty", 0, "too short"},
		{"in the length", 5, "too short"},
		{"length only", 8, "runs past the end"},
		{"in the header", 8 + hlen/2, "runs past the end"},
		{"header only", 8 + hlen, `"x.weight": data_offsets [0, 16] run past the 0-byte`},
		{"in the first tensor", 8 + hlen + 10, `"x.weight": data_offsets [0, 16] run past the 10-byte`},
		{"between tensors", 8 + hlen + 16, `"y.bias": data_offsets [16, 28] run past the 16-byte`},
		{"in the last tensor", len(b) - 1, `"y.bias": data_offsets [16, 28] run past the 27-byte`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(b[:c.n])
			checkFormatErr(t, err, c.want)
		})
	}
}

// checkFormatErr fails unless err is a *FormatError whose message contains
// want.
func checkFormatErr(t *testing.T, err error, want string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestMalformed(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	entry := func(name, dtype, shape, offs string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	for _, c := range []struct {
		name   string
		header string
		data   []byte
		want   string
	}{
		{"not an object", `["a"]`, nil, "not a JSON object"},
		{"a string", `"hello"`, nil, "not a JSON object"},
		{"invalid JSON", `{"a":`, nil, "invalid JSON"},
		{"empty header", ``, nil, "invalid JSON"},
		{"not UTF-8", "{\"\xff\":{}}", nil, "not valid UTF-8"},
		{"garbage after the object", `{}x`, nil, "data after its JSON object"},
		{"second object", `{} {}`, nil, "data after its JSON object"},
		{"overlap", `{` + entry("a", "F32", "[2]", "[0,8]") + `,` + entry("b", "F32", "[2]", "[4,12]") + `}`, f32(3),
			`tensor "b": data_offsets [4, 12] overlap tensor "a", which ends at 8`},
		{"same range", `{` + entry("a", "F32", "[2]", "[0,8]") + `,` + entry("b", "F32", "[2]", "[0,8]") + `}`, f32(2),
			`tensor "b": data_offsets [0, 8] overlap tensor "a"`},
		{"gap", `{` + entry("a", "F32", "[2]", "[0,8]") + `,` + entry("b", "F32", "[1]", "[12,16]") + `}`, f32(4),
			`tensor "b": data_offsets [12, 16] leave a gap of 4 bytes after tensor "a"`},
		{"not from 0", `{` + entry("a", "F32", "[1]", "[4,8]") + `}`, f32(2),
			`tensor "a": data_offsets [4, 8] leave bytes [0, 4)`},
		{"trailing bytes", `{` + entry("a", "F32", "[2]", "[0,8]") + `}`, f32(3),
			`tensor "a": is the last tensor and ends at 8, but the data buffer has 12 bytes (4 trailing bytes)`},
		{"no tensors, trailing bytes", `{}`, f32(1), "no tensors, but 4 bytes"},
		{"shape vs byte length", `{` + entry("w", "F32", "[2,3]", "[0,16]") + `}`, f32(4),
			`tensor "w": shape [2 3] of F32 needs 24 bytes, data_offsets [0, 16] hold 16`},
		{"overflowing shape", `{` + entry("w", "F64", "[4294967296,4294967296]", "[0,8]") + `}`, f32(2),
			`tensor "w": shape [4294967296 4294967296] of F64 overflows`},
		{"overflow before a zero", `{` + entry("w", "F32", "[4294967296,4294967296,4294967296,0]", "[0,0]") + `}`, nil,
			`tensor "w": shape`},
		{"shape times size overflows", `{` + entry("w", "F64", "[2305843009213693952]", "[0,0]") + `}`, nil,
			`tensor "w": shape [2305843009213693952] of F64 overflows`},
		{"dimension beyond int64", `{` + entry("w", "F32", "[18446744073709551615]", "[0,4]") + `}`, f32(1),
			`tensor "w": shape [18446744073709551615]: dimension 18446744073709551615 is too large`},
		{"negative dimension", `{` + entry("w", "F32", "[-1]", "[0,4]") + `}`, f32(1),
			`tensor "w": shape: element 0 is -1, want a non-negative integer`},
		{"duplicate name", `{` + entry("w", "F32", "[1]", "[0,4]") + `,` + entry("w", "F32", "[1]", "[4,8]") + `}`, f32(2),
			`tensor "w": appears twice`},
		{"duplicate name by escape", `{` + entry("w", "F32", "[1]", "[0,4]") + `,` + entry(`\u0077`, "F32", "[1]", "[4,8]") + `}`, f32(2),
			`tensor "w": appears twice`},
		{"duplicate metadata", `{"__metadata__":{},"__metadata__":{}}`, nil, `"__metadata__": appears twice`},
		{"unknown dtype", `{` + entry("w", "F31", "[1]", "[0,4]") + `}`, f32(1), `tensor "w": unknown dtype "F31"`},
		{"unsupported dtype", `{` + entry("w", "I32", "[1]", "[0,4]") + `}`, f32(1), `tensor "w": dtype I32 is not supported`},
		{"dtype not a string", `{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, f32(1), `tensor "w": dtype is the number 4`},
		{"NaN offset", `{` + entry("w", "F32", "[1]", "[0,NaN]") + `}`, f32(1), `tensor "w": data_offsets: invalid JSON`},
		{"NaN dimension", `{` + entry("w", "F32", "[NaN]", "[0,4]") + `}`, f32(1), `tensor "w": shape: invalid JSON`},
		{"negative offset", `{` + entry("w", "F32", "[1]", "[-4,0]") + `}`, f32(1), `tensor "w": data_offsets: element 0 is -4`},
		{"float offset", `{` + entry("w", "F32", "[1]", "[0,4.0]") + `}`, f32(1), `tensor "w": data_offsets: element 1 is 4.0`},
		{"exponent offset", `{` + entry("w", "F32", "[1]", "[0,4e0]") + `}`, f32(1), `tensor "w": data_offsets: element 1 is 4e0`},
		{"float dimension", `{` + entry("w", "F32", "[1.5]", "[0,4]") + `}`, f32(1), `tensor "w": shape: element 0 is 1.5`},
		{"huge offset", `{` + entry("w", "F32", "[1]", "[0,99999999999999999999]") + `}`, f32(1), `tensor "w": data_offsets: element 1 is 99999999999999999999`},
		{"offsets reversed", `{` + entry("w", "F32", "[1]", "[4,0]") + `}`, f32(1), `tensor "w": data_offsets [4, 0] end before they begin`},
		{"three offsets", `{` + entry("w", "F32", "[1]", "[0,4,8]") + `}`, f32(1), `tensor "w": data_offsets has 3 numbers`},
		{"offsets past the buffer", `{` + entry("w", "F32", "[1024]", "[0,4096]") + `}`, f32(1), `tensor "w": data_offsets [0, 4096] run past the 4-byte data buffer`},
		{"shape a string", `{` + entry("w", "F32", `"2"`, "[0,4]") + `}`, f32(1), `tensor "w": shape: is the string "2"`},
		{"no dtype", `{"w":{"shape":[1],"data_offsets":[0,4]}}`, f32(1), `tensor "w": no dtype`},
		{"no shape", `{"w":{"dtype":"F32","data_offsets":[0,4]}}`, f32(1), `tensor "w": no shape`},
		{"no offsets", `{"w":{"dtype":"F32","shape":[1]}}`, f32(1), `tensor "w": no data_offsets`},
		{"unknown field", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, f32(1), `tensor "w": unknown field "x"`},
		{"repeated field", `{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1), `tensor "w": dtype appears twice`},
		{"entry not an object", `{"w":[1]}`, nil, `tensor "w": entry is an array`},
		{"metadata not an object", `{"__metadata__":"pt"}`, nil, `__metadata__: is the string "pt"`},
		{"metadata number", `{"__metadata__":{"format":1}}`, nil, `__metadata__: key "format" is the number 1`},
		{"metadata null", `{"__metadata__":{"format":null}}`, nil, `__metadata__: key "format" is null`},
		{"metadata nested", `{"__metadata__":{"format":{}}}`, nil, `__metadata__: key "format" is an object`},
		{"metadata duplicate key", `{"__metadata__":{"a":"1","a":"2"}}`, nil, `__metadata__: key "a" appears twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(rawFile(c.header, c.data))
			checkFormatErr(t, err, c.want)
		})
	}
}

func TestHeaderLength(t *testing.T) {
	for _, c := range []struct {
		name string
		n    uint64
		want string
	}{
		{"over the cap", 100_000_001, "header length 100000001 exceeds the 100000000-byte limit"},
		{"max uint64, n+8 overflows", math.MaxUint64, "exceeds"},
		{"max int64", math.MaxInt64, "exceeds"},
		{"past the file", 64, "header length 64 runs past the end of the 18-byte file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := binary.LittleEndian.AppendUint64(nil, c.n)
			b = append(b, "{}        "...)
			_, err := readBytes(b)
			checkFormatErr(t, err, c.want)
		})
	}
}

// TestAccepts covers what the format allows that a naive reader
// might reject.
func TestAccepts(t *testing.T) {
	for _, c := range []struct {
		name   string
		header string
		data   []byte
		names  []string // in data order
	}{
		{"no tensors", `{}`, nil, []string{}},
		{"space padding", `{}      `, nil, []string{}},
		{"header order differs from data order", `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8), []string{"a", "b"}},
		{"empty tensors", `{"e":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]},"d":{"dtype":"BF16","shape":[3,0],"data_offsets":[0,0]}}`, nil, []string{"d", "e"}},
		{"fields in any order", `{"a":{"data_offsets":[0,8],"shape":[],"dtype":"I64"}}`, make([]byte, 8), []string{"a"}},
		{"empty metadata", `{"__metadata__":{}}`, nil, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sf, err := readBytes(rawFile(c.header, c.data))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, st := range sf.Tensors {
				names = append(names, st.Name)
			}
			if !slices.Equal(names, c.names) && !(len(names) == 0 && len(c.names) == 0) {
				t.Errorf("tensors %v, want %v", names, c.names)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	ok := Tensor{Name: "a", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}
	for _, c := range []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{ok, ok}, `tensor "a": appears twice`},
		{"reserved name", []Tensor{{Name: "__metadata__", DType: F32, Shape: []int{}, Data: make([]byte, 4)}}, "reserved"},
		{"bad dtype", []Tensor{{Name: "b", DType: "F8", Shape: []int{}, Data: make([]byte, 1)}}, `tensor "b": unknown dtype "F8"`},
		{"short data", []Tensor{{Name: "c", DType: F64, Shape: []int{2}, Data: make([]byte, 8)}}, `tensor "c": shape [2] of F64 needs 16 bytes, Data has 8`},
		{"negative dim", []Tensor{{Name: "d", DType: F64, Shape: []int{-1}}}, `tensor "d": shape [-1]`},
		{"not UTF-8", []Tensor{{Name: "\xff", DType: F32, Shape: []int{0}}}, "not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, c.tensors, nil)
			checkFormatErr(t, err, c.want)
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestReadFileNamesPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	if err := os.WriteFile(p, rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	checkFormatErr(t, err, p+`: safetensors: tensor "w": shape [2] of F32 needs 8 bytes`)

	fsys := fstest.MapFS{"m/w.safetensors": {Data: validFile(t)[:20]}}
	_, err = ReadFS(fsys, "m/w.safetensors")
	checkFormatErr(t, err, "m/w.safetensors: safetensors: ")

	_, err = ReadFS(fsys, "m/none.safetensors")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v, want ErrNotExist", err)
	}
}

// shortReaderAt claims more bytes than it has.
type shortReaderAt struct{ b []byte }

func (r shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(r.b).ReadAt(p, off)
}

func TestReadShortReader(t *testing.T) {
	b := validFile(t)
	_, err := Read(shortReaderAt{b[:len(b)-4]}, int64(len(b)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
	}
}

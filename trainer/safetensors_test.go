package trainer

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

func readBytes(b []byte) (*SafeFile, error) {
	return ReadSafetensors(bytes.NewReader(b), int64(len(b)))
}

func mustWrite(t *testing.T, tensors []SafeTensor, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, tensors, md); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustFromTensor[T Float](t *testing.T, name string, x *Tensor[T], dtype string) SafeTensor {
	t.Helper()
	st, err := FromTensor(name, x, dtype)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSafetensorsByteLayout pins the layout byte by byte: the length
// prefix, the header as the writer spells it (metadata first, tensors in
// the given order, padding to 8), and little-endian data.
func TestSafetensorsByteLayout(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}` +
		"      " // 138 bytes of JSON, padded to 144
	want := []byte{144, 0, 0, 0, 0, 0, 0, 0}
	want = append(want, header...)
	want = append(want,
		0x00, 0x00, 0x80, 0x3f, // 1.0f
		0x00, 0x00, 0x20, 0xc0, // -2.5f
		0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // int64 -7
	)

	a := &Tensor[float32]{Shape: []int{2}, Data: []float32{1, -2.5}}
	b := &Tensor[float32]{Shape: []int{}, Data: []float32{-7}}
	got := mustWrite(t, []SafeTensor{
		mustFromTensor(t, "a", a, DTypeF32),
		mustFromTensor(t, "b", b, DTypeI64),
	}, map[string]string{"format": "pt"})
	if !bytes.Equal(got, want) {
		t.Fatalf("written bytes:\n%q\nwant\n%q", got, want)
	}

	sf, err := readBytes(want)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sf.Metadata, map[string]string{"format": "pt"}; len(got) != 1 || got["format"] != "pt" {
		t.Errorf("metadata %v, want %v", got, want)
	}
	if len(sf.Tensors) != 2 {
		t.Fatalf("%d tensors, want 2", len(sf.Tensors))
	}
	ta, err := ToTensor[float32](sf.Tensor("a"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ta.Shape, []int{2}) || !slices.Equal(ta.Data, []float32{1, -2.5}) {
		t.Errorf("a = %v %v, want [2] [1 -2.5]", ta.Shape, ta.Data)
	}
	tb, err := ToTensor[float64](sf.Tensor("b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Shape) != 0 || !slices.Equal(tb.Data, []float64{-7}) {
		t.Errorf("b = %v %v, want [] [-7]", tb.Shape, tb.Data)
	}
}

// TestSafetensorsRoundTrip writes every dtype, an empty tensor and
// metadata, and reads them back unchanged.
func TestSafetensorsRoundTrip(t *testing.T) {
	vals := []float64{0, 1, -2, 4, 3, -1024, 65504}
	x64 := &Tensor[float64]{Shape: []int{7}, Data: vals}
	x32 := Convert[float32](x64)
	tensors := []SafeTensor{
		mustFromTensor(t, "f32", x32, DTypeF32),
		mustFromTensor(t, "f64", x64, DTypeF64),
		mustFromTensor(t, "f16", x64, DTypeF16),
		mustFromTensor(t, "bf16", x32, DTypeBF16),
		mustFromTensor(t, "i64", x64, DTypeI64),
		mustFromTensor(t, "empty", NewTensor[float32](0, 3), DTypeF32),
		mustFromTensor(t, "scalar", &Tensor[float64]{Shape: []int{}, Data: []float64{math.Pi}}, DTypeF64),
	}
	md := map[string]string{"format": "pt", "note": `quotes " and <html> & ünicode`}
	sf, err := readBytes(mustWrite(t, tensors, md))
	if err != nil {
		t.Fatal(err)
	}
	if len(sf.Metadata) != 2 || sf.Metadata["note"] != md["note"] {
		t.Errorf("metadata %q, want %q", sf.Metadata, md)
	}
	if len(sf.Tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(sf.Tensors), len(tensors))
	}
	for i, want := range tensors {
		got := sf.Tensors[i]
		if got.Name != want.Name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %d = %s %s %v, want %s %s %v", i, got.Name, got.DType, got.Shape, want.Name, want.DType, want.Shape)
		}
	}
	// Every value above is exact in every dtype, except 65504 in BF16.
	for _, name := range []string{"f32", "f64", "f16", "i64"} {
		got, err := ToTensor[float64](sf.Tensor(name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Data, vals) {
			t.Errorf("%s decodes to %v, want %v", name, got.Data, vals)
		}
	}
	if got, _ := ToTensor[float64](sf.Tensor("scalar")); got.Data[0] != math.Pi {
		t.Errorf("F64 scalar decodes to %v, want π exactly", got.Data[0])
	}
}

// TestSafetensorsF64Exact: a float64 tensor survives F64 bit for bit,
// including values float32 cannot hold, signed zero and NaN payloads.
func TestSafetensorsF64Exact(t *testing.T) {
	vals := []float64{math.Pi, 1e-310, math.Copysign(0, -1), math.MaxFloat64, math.Float64frombits(0x7ff8000000000123), math.Inf(-1)}
	x := &Tensor[float64]{Shape: []int{2, 3}, Data: vals}
	sf, err := readBytes(mustWrite(t, []SafeTensor{mustFromTensor(t, "x", x, DTypeF64)}, nil))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ToTensor[float64](&sf.Tensors[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if math.Float64bits(got.Data[i]) != math.Float64bits(vals[i]) {
			t.Errorf("element %d = %x, want %x", i, math.Float64bits(got.Data[i]), math.Float64bits(vals[i]))
		}
	}
	if sf.Metadata != nil {
		t.Errorf("metadata %v, want nil when none was written", sf.Metadata)
	}
}

func TestF16Table(t *testing.T) {
	// Bit patterns from IEEE 754-2008 binary16: 5 exponent bits (bias
	// 15), 10 mantissa bits.
	for _, c := range []struct {
		bits uint16
		val  float64
	}{
		{0x0000, 0},
		{0x8000, math.Copysign(0, -1)},
		{0x0001, 0x1p-24},           // smallest subnormal
		{0x0200, 0x1p-15},           // a subnormal
		{0x03ff, 1023 * 0x1p-24},    // largest subnormal
		{0x0400, 0x1p-14},           // smallest normal
		{0x3c00, 1},                 //
		{0x3c01, 1 + 0x1p-10},       // 1 + ulp
		{0xc000, -2},                //
		{0x3555, 0.333251953125},    // nearest to 1/3
		{0x7bff, 65504},             // largest finite
		{0xfbff, -65504},            //
		{0x7c00, math.Inf(1)},       //
		{0xfc00, math.Inf(-1)},      //
		{0x8001, -0x1p-24},          // negative subnormal
		{0x4248, 3.140625},          // nearest to π
		{0x5640, 100},               //
		{0x0001 | 0x8000, -0x1p-24}, //
	} {
		got := f16ToFloat32(c.bits)
		if float64(got) != c.val || math.Signbit(float64(got)) != math.Signbit(c.val) {
			t.Errorf("f16ToFloat32(%#04x) = %v, want %v", c.bits, got, c.val)
		}
		if back := float64ToF16(c.val); back != c.bits {
			t.Errorf("float64ToF16(%v) = %#04x, want %#04x", c.val, back, c.bits)
		}
	}
	// NaN: any mantissa with an all-ones exponent; the sign and payload
	// survive a round trip, and encoding makes it quiet.
	for _, bits := range []uint16{0x7e00, 0xfe00, 0x7c01, 0x7fff} {
		f := f16ToFloat32(bits)
		if !math.IsNaN(float64(f)) {
			t.Errorf("f16ToFloat32(%#04x) = %v, want NaN", bits, f)
		}
		if back := float64ToF16(float64(f)); back != bits|0x0200 {
			t.Errorf("NaN %#04x re-encodes as %#04x, want %#04x", bits, back, bits|0x0200)
		}
	}
	// Rounding to nearest, ties to even.
	for _, c := range []struct {
		in   float64
		want uint16
	}{
		{1 + 0x1p-11, 0x3c00},                 // tie, down to even
		{1 + 3*0x1p-11, 0x3c02},               // tie, up to even
		{1 + 0x1p-11 + 0x1p-40, 0x3c01},       // just past the tie; float32 would round it onto the tie
		{65519, 0x7bff},                       // below the overflow midpoint
		{65520, 0x7c00},                       // the midpoint goes to Inf (even)
		{1e300, 0x7c00},                       //
		{0x1p-25, 0x0000},                     // half the smallest subnormal: tie to 0
		{3 * 0x1p-25, 0x0002},                 // tie between 1 and 2 steps
		{0x1p-25 + 0x1p-50, 0x0001},           // past the tie
		{0x1p-14 - 0x1p-25, 0x0400},           // largest subnormal + half a step: tie up to the smallest normal
		{-1e-10, 0x8000},                      // underflow keeps the sign
		{math.SmallestNonzeroFloat64, 0x0000}, //
		{float64(float32(1.0 / 3)), 0x3555},   //
		{math.Float64frombits(0x7ff8000000000000), 0x7e00},
	} {
		if got := float64ToF16(c.in); got != c.want {
			t.Errorf("float64ToF16(%v) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

func TestF16AllPatternsRoundTrip(t *testing.T) {
	// Every non-NaN binary16 value decodes to a float that encodes back to
	// the same bits.
	for b := 0; b < 1<<16; b++ {
		f := f16ToFloat32(uint16(b))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := float64ToF16(float64(f)); got != uint16(b) {
			t.Fatalf("%#04x → %v → %#04x", b, f, got)
		}
	}
}

func TestBF16Table(t *testing.T) {
	// bfloat16 is the top 16 bits of a binary32: 8 exponent bits (bias
	// 127), 7 mantissa bits.
	for _, c := range []struct {
		bits uint16
		val  float64
	}{
		{0x0000, 0},
		{0x8000, math.Copysign(0, -1)},
		{0x3f80, 1},
		{0xc000, -2},
		{0x0001, 0x1p-133},               // smallest subnormal
		{0x007f, 127 * 0x1p-133},         // largest subnormal
		{0x0080, 0x1p-126},               // smallest normal
		{0x7f7f, (2 - 0x1p-7) * 0x1p127}, // largest finite
		{0x3eab, 0.333984375},            // nearest to 1/3
		{0x7f80, math.Inf(1)},            //
		{0xff80, math.Inf(-1)},           //
		{0x4049, 3.140625},               // nearest to π
	} {
		got := bf16ToFloat32(c.bits)
		if float64(got) != c.val || math.Signbit(float64(got)) != math.Signbit(c.val) {
			t.Errorf("bf16ToFloat32(%#04x) = %v, want %v", c.bits, got, c.val)
		}
		if back := float64ToBF16(c.val); back != c.bits {
			t.Errorf("float64ToBF16(%v) = %#04x, want %#04x", c.val, back, c.bits)
		}
	}
	for _, c := range []struct {
		in   float64
		want uint16
	}{
		{1 + 0x1p-8, 0x3f80},             // tie, down to even
		{1 + 3*0x1p-8, 0x3f82},           // tie, up to even
		{1.0 / 3, 0x3eab},                //
		{math.MaxFloat32, 0x7f80},        // past the overflow midpoint: Inf, as torch.bfloat16 gives
		{0x1p-134, 0x0000},               // tie to 0
		{math.NaN(), 0x7fc0},             // quiet NaN
		{-math.NaN(), 0xffc0},            //
		{-0x1p-140, 0x8000},              //
		{(2 - 0x1p-8) * 0x1p127, 0x7f80}, // the midpoint itself rounds to even: Inf
	} {
		if got := float64ToBF16(c.in); got != c.want {
			t.Errorf("float64ToBF16(%v) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	// bfloat16 is a truncated float32, so every non-NaN pattern must agree
	// with the generic decoder, and round-trip.
	for b := 0; b < 1<<16; b++ {
		f := bf16ToFloat32(uint16(b))
		if math.IsNaN(float64(f)) {
			continue
		}
		if g := smallToFloat64(uint32(b), 8, 7); g != float64(f) {
			t.Fatalf("%#04x: generic decoder %v, truncation %v", b, g, f)
		}
		if got := float64ToBF16(float64(f)); got != uint16(b) {
			t.Fatalf("%#04x → %v → %#04x", b, f, got)
		}
	}
}

func TestFromTensorI64(t *testing.T) {
	for _, v := range []float64{0.5, math.NaN(), math.Inf(1), 0x1p63, -0x1p64} {
		_, err := FromTensor("count", &Tensor[float64]{Shape: []int{}, Data: []float64{v}}, DTypeI64)
		if err == nil || !strings.Contains(err.Error(), `"count"`) {
			t.Errorf("I64 of %v: error %v, want one naming the tensor", v, err)
		}
	}
	st, err := FromTensor("count", &Tensor[float64]{Shape: []int{2}, Data: []float64{-0x1p63, 0x1p53}}, DTypeI64)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if got := []int64{int64(le.Uint64(st.Data)), int64(le.Uint64(st.Data[8:]))}; !slices.Equal(got, []int64{math.MinInt64, 1 << 53}) {
		t.Errorf("I64 = %v", got)
	}
}

// validFile is a correct two-tensor file for the truncation tests.
func validFile(t *testing.T) []byte {
	x := &Tensor[float32]{Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}
	y := &Tensor[float32]{Shape: []int{3}, Data: []float32{5, 6, 7}}
	return mustWrite(t, []SafeTensor{
		mustFromTensor(t, "x.weight", x, DTypeF32),
		mustFromTensor(t, "y.bias", y, DTypeF32),
	}, map[string]string{"format": "pt"})
}

func TestSafetensorsTruncated(t *testing.T) {
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

func TestSafetensorsMalformed(t *testing.T) {
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

func TestSafetensorsHeaderLength(t *testing.T) {
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

// TestSafetensorsAccepts covers what the format allows that a naive reader
// might reject.
func TestSafetensorsAccepts(t *testing.T) {
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

func TestWriteSafetensorsErrors(t *testing.T) {
	ok := SafeTensor{Name: "a", DType: DTypeF32, Shape: []int{1}, Data: make([]byte, 4)}
	for _, c := range []struct {
		name    string
		tensors []SafeTensor
		want    string
	}{
		{"duplicate", []SafeTensor{ok, ok}, `tensor "a": appears twice`},
		{"reserved name", []SafeTensor{{Name: "__metadata__", DType: DTypeF32, Shape: []int{}, Data: make([]byte, 4)}}, "reserved"},
		{"bad dtype", []SafeTensor{{Name: "b", DType: "F8", Shape: []int{}, Data: make([]byte, 1)}}, `tensor "b": unknown dtype "F8"`},
		{"short data", []SafeTensor{{Name: "c", DType: DTypeF64, Shape: []int{2}, Data: make([]byte, 8)}}, `tensor "c": shape [2] of F64 needs 16 bytes, Data has 8`},
		{"negative dim", []SafeTensor{{Name: "d", DType: DTypeF64, Shape: []int{-1}}}, `tensor "d": shape [-1]`},
		{"not UTF-8", []SafeTensor{{Name: "\xff", DType: DTypeF32, Shape: []int{0}}}, "not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteSafetensors(&buf, c.tensors, nil)
			checkFormatErr(t, err, c.want)
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestReadSafetensorsFileNamesPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	if err := os.WriteFile(p, rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSafetensorsFile(p)
	checkFormatErr(t, err, p+`: safetensors: tensor "w": shape [2] of F32 needs 8 bytes`)

	fsys := fstest.MapFS{"m/w.safetensors": {Data: validFile(t)[:20]}}
	_, err = ReadSafetensorsFS(fsys, "m/w.safetensors")
	checkFormatErr(t, err, "m/w.safetensors: safetensors: ")

	_, err = ReadSafetensorsFS(fsys, "m/none.safetensors")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v, want ErrNotExist", err)
	}
}

// shortReaderAt claims more bytes than it has.
type shortReaderAt struct{ b []byte }

func (r shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(r.b).ReadAt(p, off)
}

func TestReadSafetensorsShortReader(t *testing.T) {
	b := validFile(t)
	_, err := ReadSafetensors(shortReaderAt{b[:len(b)-4]}, int64(len(b)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
	}
}

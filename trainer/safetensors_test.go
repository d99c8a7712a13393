package trainer

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"thaw/trainer/safetensors"
)

// rawFile builds a safetensors file from a header and a data buffer,
// without any of the writer's checks.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func readBytes(b []byte) (*safetensors.File, error) {
	return safetensors.Read(bytes.NewReader(b), int64(len(b)))
}

func mustWrite(t *testing.T, tensors []SafeTensor, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, tensors, md); err != nil {
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

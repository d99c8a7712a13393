package trainer

import (
	"encoding/binary"
	"math"
	"slices"

	"thaw/trainer/safetensors"
)

// SafeTensor is one tensor of a state dict as a safetensors file stores it
// (see package safetensors): name, dtype, shape and little-endian bytes.
type SafeTensor = safetensors.Tensor

// The dtypes of a state dict's tensors (see package safetensors). Float
// tensors of any of the float types load into a model of either precision;
// I64 holds integer buffers such as BatchNorm's num_batches_tracked.
const (
	DTypeF32  = safetensors.F32
	DTypeF64  = safetensors.F64
	DTypeF16  = safetensors.F16  // IEEE 754 binary16
	DTypeBF16 = safetensors.BF16 // bfloat16: the top half of a float32
	DTypeI64  = safetensors.I64
)

// ToTensor decodes st into a new tensor of element type T. F32, F64, F16
// and BF16 convert exactly into float64, and exactly into float32 except
// F64, which rounds to nearest. I64 converts to the nearest float, which is
// exact up to 2^53 in float64 and 2^24 in float32. It returns an error
// naming the tensor if its dtype is not supported or its Data does not
// match its shape.
func ToTensor[T Float](st *SafeTensor) (*Tensor[T], error) {
	n, ok := safetensors.ByteSize(st.Shape, st.DType)
	switch {
	case safetensors.Size(st.DType) == 0:
		return nil, safetensors.Unsupported(st.Name, st.DType)
	case !ok:
		return nil, safetensors.Errorf(st.Name, "shape %v of %s is negative or overflows", st.Shape, st.DType)
	case n != uint64(len(st.Data)):
		return nil, safetensors.Errorf(st.Name, "shape %v of %s needs %d bytes, Data has %d", st.Shape, st.DType, n, len(st.Data))
	}
	t := &Tensor[T]{Shape: slices.Clone(st.Shape), Data: make([]T, len(st.Data)/safetensors.Size(st.DType))}
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
	size := safetensors.Size(dtype)
	if size == 0 {
		return SafeTensor{}, safetensors.Unsupported(name, dtype)
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
				return SafeTensor{}, safetensors.Errorf(name, "element %d is %v, not an int64", i, f)
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

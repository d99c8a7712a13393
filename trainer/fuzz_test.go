package trainer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"
	"testing"

	"thaw/trainer/safetensors"
)

// fuzzSeeds are valid files from the writer, one per feature the reader
// must handle; testdata/fuzz/FuzzReadSafetensors adds malformed ones.
func fuzzSeeds(tb testing.TB) [][]byte {
	enc := func(name, dtype string, shape []int, vals ...float64) SafeTensor {
		st, err := FromTensor(name, &Tensor[float64]{Shape: shape, Data: vals}, dtype)
		if err != nil {
			tb.Fatal(err)
		}
		return st
	}
	write := func(md map[string]string, ts ...SafeTensor) []byte {
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, ts, md); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	return [][]byte{
		write(nil),
		write(map[string]string{"format": "pt"}, enc("w", DTypeF32, []int{2, 2}, 1, -2, 0.5, math.Inf(1))),
		write(nil, enc("x", DTypeF64, []int{3}, math.Pi, math.Copysign(0, -1), 1e-310)),
		write(nil, enc("h", DTypeF16, []int{4}, 1, 65504, 0x1p-24, math.NaN())),
		write(nil, enc("b", DTypeBF16, []int{2}, 1.0/3, -math.Inf(1))),
		write(nil, enc("bn.num_batches_tracked", DTypeI64, []int{}, 12345)),
		write(map[string]string{"a": "1", "b": ""},
			enc("e", DTypeF32, []int{0, 3}),
			enc("fc.weight", DTypeF32, []int{1, 2}, 3, 4),
			enc("fc.bias", DTypeF16, []int{1}, 5),
			enc("n", DTypeI64, []int{}, 7)),
	}
}

// FuzzReadSafetensors feeds arbitrary bytes to the reader. Beyond not
// panicking: a rejected file gives a *safetensors.FormatError, and an accepted one
// tiles its buffer, decodes, and survives a write/read round trip
// unchanged, the written form being a fixed point.
func FuzzReadSafetensors(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := safetensors.Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			var fe *safetensors.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *safetensors.FormatError", err, err)
			}
			if sf != nil {
				t.Fatal("a file and an error")
			}
			return
		}

		hlen := binary.LittleEndian.Uint64(b)
		total := 0
		for i := range sf.Tensors {
			st := &sf.Tensors[i]
			total += len(st.Data)
			x, err := ToTensor[float64](st)
			if err != nil {
				t.Fatalf("accepted tensor does not decode: %v", err)
			}
			if numel(x.Shape) != len(x.Data) {
				t.Fatalf("tensor %q: shape %v with %d elements", st.Name, x.Shape, len(x.Data))
			}
			checkSmallFloats(t, st)
		}
		if uint64(total) != uint64(len(b))-8-hlen {
			t.Fatalf("tensors hold %d bytes, the buffer %d", total, uint64(len(b))-8-hlen)
		}

		var buf bytes.Buffer
		if err := safetensors.Write(&buf, sf.Tensors, sf.Metadata); err != nil {
			t.Fatalf("an accepted file does not write back: %v", err)
		}
		once := slices.Clone(buf.Bytes())
		sf2, err := safetensors.Read(bytes.NewReader(once), int64(len(once)))
		if err != nil {
			t.Fatalf("re-reading the written file: %v", err)
		}
		if len(sf2.Tensors) != len(sf.Tensors) {
			t.Fatalf("%d tensors after the round trip, want %d", len(sf2.Tensors), len(sf.Tensors))
		}
		for i, want := range sf.Tensors {
			got := sf2.Tensors[i]
			if got.Name != want.Name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("tensor %d after the round trip: %q %s %v, want %q %s %v", i, got.Name, got.DType, got.Shape, want.Name, want.DType, want.Shape)
			}
		}
		if len(sf.Metadata) != len(sf2.Metadata) || (len(sf.Metadata) > 0 && !maps.Equal(sf.Metadata, sf2.Metadata)) {
			t.Fatalf("metadata %q after the round trip, want %q", sf2.Metadata, sf.Metadata)
		}
		buf.Reset()
		if err := safetensors.Write(&buf, sf2.Tensors, sf2.Metadata); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), once) {
			t.Fatal("writing the re-read file gives different bytes")
		}
	})
}

// checkSmallFloats checks that every non-NaN F16 or BF16 element of st
// decodes to a value that encodes back to its bits.
func checkSmallFloats(t *testing.T, st *SafeTensor) {
	var dec func(uint16) float32
	var enc func(float64) uint16
	switch st.DType {
	case DTypeF16:
		dec, enc = f16ToFloat32, float64ToF16
	case DTypeBF16:
		dec, enc = bf16ToFloat32, float64ToBF16
	default:
		return
	}
	for i := 0; i+1 < len(st.Data); i += 2 {
		h := binary.LittleEndian.Uint16(st.Data[i:])
		v := dec(h)
		if math.IsNaN(float64(v)) {
			continue
		}
		if got := enc(float64(v)); got != h {
			t.Fatalf("tensor %q: %s %#04x → %v → %#04x", st.Name, st.DType, h, v, got)
		}
	}
}

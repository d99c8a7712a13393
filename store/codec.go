package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"thaw/trainer"
	"thaw/trainer/safetensors"
)

// A checkpoint file is one safetensors file:
//
//   - the model's weights under their plain PyTorch names, so that
//     torch's load_state_dict(..., strict=False) takes the file as it is;
//   - the best weights so far under "best." + name;
//   - the optimizer state under "optimizer." + its name ("<param>.exp_avg" and
//     so on, see trainer.Optimizer.State), every tensor F32;
//   - metadata: "format": "pt" (what PyTorch's safetensors loader expects)
//     and the thaw keys below, the loop state as JSON.
const (
	bestPrefix      = "best."
	optimizerPrefix = "optimizer."

	metaFormat  = "format"
	metaVersion = "thaw.checkpoint" // version of this layout
	metaKind    = "thaw.kind"
	metaStep    = "thaw.step"
	metaStage   = "thaw.stage"
	metaLoop    = "thaw.loop"

	checkpointVersion = "1"
)

// EncodeCheckpoint writes c to w as one safetensors file in the layout
// described above. The output depends only on c: the optimizer entries are
// written in name order, so that saving the same state twice gives the
// same bytes. It returns an error when a weight's name starts with "best."
// or "optimizer." (the file could not be read back unambiguously), when a
// tensor is malformed (see safetensors.Write), or when writing fails.
func EncodeCheckpoint(w io.Writer, c trainer.Checkpoint) error {
	if !c.Kind.Valid() {
		return fmt.Errorf("encode checkpoint: %w: kind %q", ErrInvalid, c.Kind)
	}
	tensors := make([]trainer.SafeTensor, 0, len(c.Weights)+len(c.Best)+len(c.Optimizer))
	for _, t := range c.Weights {
		if strings.HasPrefix(t.Name, bestPrefix) || strings.HasPrefix(t.Name, optimizerPrefix) {
			return fmt.Errorf("encode checkpoint: %w: weight %q uses a reserved prefix", ErrInvalid, t.Name)
		}
		tensors = append(tensors, t)
	}
	for _, t := range c.Best {
		t.Name = bestPrefix + t.Name
		tensors = append(tensors, t)
	}
	names := make([]string, 0, len(c.Optimizer))
	for name := range c.Optimizer {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		st, err := trainer.FromTensor(optimizerPrefix+name, c.Optimizer[name], trainer.DTypeF32)
		if err != nil {
			return fmt.Errorf("encode checkpoint: optimizer state: %w", err)
		}
		tensors = append(tensors, st)
	}
	loop, err := json.Marshal(c.Loop)
	if err != nil {
		return fmt.Errorf("encode checkpoint: loop state: %w", err)
	}
	meta := map[string]string{
		metaFormat:  "pt",
		metaVersion: checkpointVersion,
		metaKind:    string(c.Kind),
		metaStep:    strconv.Itoa(c.Step),
		metaStage:   strconv.Itoa(c.Stage),
		metaLoop:    string(loop),
	}
	if err := safetensors.Write(w, tensors, meta); err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	return nil
}

// DecodeCheckpoint reads a checkpoint of size bytes that EncodeCheckpoint
// wrote. Best is nil when the file holds no best weights and Optimizer
// empty when it holds no optimizer state. It returns an error wrapping
// [ErrCorrupt] when the file is not a valid safetensors file or not a thaw
// checkpoint, or its metadata is malformed.
func DecodeCheckpoint(r io.ReaderAt, size int64) (trainer.Checkpoint, error) {
	fail := func(format string, args ...any) (trainer.Checkpoint, error) {
		return trainer.Checkpoint{}, fmt.Errorf("decode checkpoint: %w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	f, err := safetensors.Read(r, size)
	if err != nil {
		return fail("%v", err)
	}
	md := f.Metadata
	if md[metaVersion] == "" {
		return fail("not a thaw checkpoint (no %q in the metadata)", metaVersion)
	}
	if md[metaVersion] != checkpointVersion {
		return fail("checkpoint layout %q, this thaw reads %q", md[metaVersion], checkpointVersion)
	}
	c := trainer.Checkpoint{Kind: trainer.CheckpointKind(md[metaKind]), Optimizer: map[string]*trainer.Tensor[float32]{}}
	if !c.Kind.Valid() {
		return fail("kind %q", c.Kind)
	}
	if c.Step, err = strconv.Atoi(md[metaStep]); err != nil || c.Step < 0 {
		return fail("step %q", md[metaStep])
	}
	if c.Stage, err = strconv.Atoi(md[metaStage]); err != nil || c.Stage < 0 {
		return fail("stage %q", md[metaStage])
	}
	if err := json.Unmarshal([]byte(md[metaLoop]), &c.Loop); err != nil {
		return fail("loop state: %v", err)
	}
	for _, t := range f.Tensors {
		switch {
		case strings.HasPrefix(t.Name, bestPrefix):
			t.Name = strings.TrimPrefix(t.Name, bestPrefix)
			c.Best = append(c.Best, t)
		case strings.HasPrefix(t.Name, optimizerPrefix):
			v, err := trainer.ToTensor[float32](&t)
			if err != nil {
				return fail("%v", err)
			}
			c.Optimizer[strings.TrimPrefix(t.Name, optimizerPrefix)] = v
		default:
			c.Weights = append(c.Weights, t)
		}
	}
	return c, nil
}

// LoadCheckpoint verifies the file of checkpoint id against its record (see
// [Store.OpenCheckpoint]) and decodes it. When the file is missing, damaged
// or does not decode, the checkpoint is marked bad, so that
// [Store.LastGoodCheckpoint] then yields the one before, and the error,
// which names the file, wraps [ErrCorrupt]. It returns an error wrapping
// [ErrNotFound] when there is no checkpoint id.
func (s *Store) LoadCheckpoint(ctx context.Context, id string) (trainer.Checkpoint, error) {
	f, rec, err := s.OpenCheckpoint(ctx, id)
	if err != nil {
		return trainer.Checkpoint{}, err
	}
	defer f.Close()
	c, err := DecodeCheckpoint(f, rec.Size)
	if err != nil {
		p := s.Path(rec.Path)
		if merr := s.markBad(ctx, rec.ID, err.Error()); merr != nil {
			return trainer.Checkpoint{}, fmt.Errorf("checkpoint %s: %w (and recording it failed: %v)", p, err, merr)
		}
		return trainer.Checkpoint{}, fmt.Errorf("checkpoint %s: %w", p, err)
	}
	if c.Step != int(rec.Step) || c.Kind != rec.Kind {
		problem := fmt.Sprintf("file holds a %s checkpoint of step %d, the record says %s at step %d",
			c.Kind, c.Step, rec.Kind, rec.Step)
		s.markBad(ctx, rec.ID, problem)
		return trainer.Checkpoint{}, fmt.Errorf("checkpoint %s: %w: %s", s.Path(rec.Path), ErrCorrupt, problem)
	}
	return c, nil
}

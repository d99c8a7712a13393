package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"thaw/trainer"
)

// maxLoopHeader bounds the safetensors header CheckpointLoop reads: the
// same limit the safetensors reader sets.
const maxLoopHeader = 100_000_000

// CheckpointLoop returns the loop state stored in the file of checkpoint c:
// the run's stages with their skips and early stops, its best step and its
// source accuracy before training. It reads the file's header only, checks
// neither the file's hash nor its tensors and, unlike [Store.LoadCheckpoint],
// never marks a checkpoint bad: it is for readers, which write nothing. It
// returns an error wrapping [ErrCorrupt] when the header is not a thaw
// checkpoint's or is not for c's step, and the file system's error.
func (s *Store) CheckpointLoop(c Checkpoint) (trainer.LoopState, error) {
	fail := func(format string, args ...any) (trainer.LoopState, error) {
		return trainer.LoopState{}, fmt.Errorf("checkpoint %s: %w: %s", s.Path(c.Path), ErrCorrupt, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(s.Path(c.Path))
	if err != nil {
		return trainer.LoopState{}, fmt.Errorf("checkpoint %s: %w", c.ID, err)
	}
	defer f.Close()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return fail("header length: %v", err)
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > maxLoopHeader {
		return fail("header length %d exceeds the %d-byte limit", size, maxLoopHeader)
	}
	header := make([]byte, size)
	if _, err := io.ReadFull(f, header); err != nil {
		return fail("header: %v", err)
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return fail("header: %v", err)
	}
	if h.Meta[metaVersion] != checkpointVersion {
		return fail("checkpoint layout %q, this thaw reads %q", h.Meta[metaVersion], checkpointVersion)
	}
	if h.Meta[metaStep] != fmt.Sprint(c.Step) {
		return fail("file holds step %s, the record says %d", h.Meta[metaStep], c.Step)
	}
	var loop trainer.LoopState
	if err := json.Unmarshal([]byte(h.Meta[metaLoop]), &loop); err != nil {
		return fail("loop state: %v", err)
	}
	return loop, nil
}

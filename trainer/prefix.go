package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
)

// Prefixes lets runs share their frozen prefix's outputs: the outputs of
// the frozen blocks below the lowest trainable one, for the training set
// and for each evaluation set, which every run computes once per stage
// (see the frozen-prefix cache of Spec). Runs of the same data that differ
// above the prefix, such as a sweep's freeze points on one seed's data,
// compute each prefix once between them: a run that finds the outputs it
// needs takes them, one that needs outputs another run is computing waits
// for them, and the rest compute and share their own.
//
// An output is shared only between runs whose prefix and data are the
// same bits: it is keyed by the SHA-256 of the prefix blocks'
// configuration, weights, buffers and layer modes, the model's input
// normalisation, and the set's samples. A run then computes from a shared
// output exactly what it computes from its own, so the results are
// bit-identical with and without sharing (a test checks it).
//
// A Prefixes is safe for concurrent use by any number of runs. It keeps
// every output it was given, each of at most the cache's limit (256 MiB)
// per set and prefix, until it is dropped: use one per sweep, or per
// seed's data. The zero value is not usable; call NewPrefixes.
type Prefixes struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*prefixEntry
	// hits counts the prefixes runs took from others instead of computing.
	hits atomic.Int64
}

// NewPrefixes returns an empty Prefixes.
func NewPrefixes() *Prefixes {
	return &Prefixes{entries: map[[sha256.Size]byte]*prefixEntry{}}
}

// Hits returns how many times a run took a prefix's outputs that another
// run (or an earlier stage of its own) had computed.
func (p *Prefixes) Hits() int { return int(p.hits.Load()) }

// prefixEntry is one shared output: per evaluation batch (eval) or per
// sample (shape, out), as the evaluator's caches hold them. done is
// closed once it is filled or abandoned (ok false).
type prefixEntry struct {
	done  chan struct{}
	ok    bool
	eval  []*Tensor[float32]
	shape []int
	out   []float32
}

// acquire returns the entry for key once it is filled, or, when nobody
// has it, a new entry that the caller must fill and pass to release (then
// owner is true). It returns nil when ctx ends while waiting.
func (p *Prefixes) acquire(ctx context.Context, key [sha256.Size]byte) (e *prefixEntry, owner bool) {
	for {
		p.mu.Lock()
		e = p.entries[key]
		if e == nil {
			e = &prefixEntry{done: make(chan struct{})}
			p.entries[key] = e
			p.mu.Unlock()
			return e, true
		}
		p.mu.Unlock()
		var cancelled <-chan struct{}
		if ctx != nil {
			cancelled = ctx.Done()
		}
		select {
		case <-e.done:
		case <-cancelled:
			return nil, false
		}
		if e.ok {
			p.hits.Add(1)
			return e, false
		}
		// Its owner gave up (stopped); try again, maybe as the owner.
	}
}

// longest returns the evaluation outputs of the longest prefix among
// keys (keys[j-1] keying the prefix [0, j)) that is shared and filled,
// and its length; nil and 0 when there is none or p is nil. It does not
// wait for outputs being computed.
func (p *Prefixes) longest(keys [][sha256.Size]byte) ([]*Tensor[float32], int) {
	if e, j := p.longestEntry(keys, false); e != nil {
		return e.eval, j
	}
	return nil, 0
}

// longestTrain is longest for the training set's outputs: the entry
// holding them and the prefix's length.
func (p *Prefixes) longestTrain(keys [][sha256.Size]byte) (int, *prefixEntry) {
	e, j := p.longestEntry(keys, true)
	return j, e
}

func (p *Prefixes) longestEntry(keys [][sha256.Size]byte, train bool) (*prefixEntry, int) {
	if p == nil {
		return nil, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for j := len(keys); j >= 1; j-- {
		e := p.entries[keys[j-1]]
		if e == nil {
			continue
		}
		select {
		case <-e.done:
		default:
			continue // being computed
		}
		if e.ok && (train && e.out != nil || !train && e.eval != nil) {
			p.hits.Add(1)
			return e, j
		}
	}
	return nil, 0
}

// offer shares e, filled, under key unless something is there already.
func (p *Prefixes) offer(key [sha256.Size]byte, e *prefixEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries[key] != nil {
		return
	}
	e.ok, e.done = true, make(chan struct{})
	close(e.done)
	p.entries[key] = e
}

// release publishes an entry its owner has filled (ok) or gives it up.
func (p *Prefixes) release(key [sha256.Size]byte, e *prefixEntry, ok bool) {
	if !ok {
		p.mu.Lock()
		delete(p.entries, key)
		p.mu.Unlock()
	}
	e.ok = ok
	close(e.done)
}

// prefixKeys returns the keys of the outputs of e's model's blocks
// [0, j) on ds, j from 1 to k, for evaluation batches (train false,
// inference mode) or for the training steps (train true, each layer in
// the mode a training forward pass gives it). It returns nil when the
// keys cannot be made (a block built without a config).
func (e *evaluator) prefixKeys(ds *Dataset, k int, train bool) [][sha256.Size]byte {
	m := e.m
	h := sha256.New()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	if train {
		h.Write([]byte("train\x00"))
	} else {
		h.Write([]byte("eval\x00"))
		put(evalBatchSize)
	}
	d := e.dataKey(ds)
	h.Write(d[:])
	head, err := json.Marshal(struct {
		Shape     []int
		Normalize *Normalization
	}{m.Config.InputShape, m.Config.Normalize})
	if err != nil {
		return nil
	}
	h.Write(head)
	keys := make([][sha256.Size]byte, k)
	for j, bl := range m.Blocks[:k] {
		if bl.config == nil {
			return nil
		}
		cfg, err := json.Marshal(bl.config)
		if err != nil {
			return nil
		}
		h.Write(cfg)
		for _, l := range bl.Layers {
			mode := uint64(0)
			if train && m.layerTrains(bl, l) {
				mode = 1
			}
			put(mode)
		}
		for _, p := range blockParams(bl) {
			put(uint64(len(p.Value.Shape)))
			for _, d := range p.Value.Shape {
				put(uint64(d))
			}
			for _, v := range p.Value.Data {
				binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
				h.Write(b[:4])
			}
		}
		// The digest so far keys the prefix [0, j+1); hashing goes on.
		h.Sum(keys[j][:0])
	}
	return keys
}

// dataKey is the SHA-256 of ds's sample shape and samples, computed once
// per set: a run's sets do not change while it runs.
func (e *evaluator) dataKey(ds *Dataset) [sha256.Size]byte {
	if d, ok := e.dataKeys[ds]; ok {
		return d
	}
	h := sha256.New()
	var b [8]byte
	for _, d := range ds.Shape {
		binary.LittleEndian.PutUint64(b[:], uint64(d))
		h.Write(b[:])
	}
	binary.LittleEndian.PutUint64(b[:], uint64(ds.Len()))
	h.Write(b[:])
	buf := make([]byte, 0, 4096)
	for _, v := range ds.X {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if e.dataKeys == nil {
		e.dataKeys = map[*Dataset][sha256.Size]byte{}
	}
	e.dataKeys[ds] = key
	return key
}

// sharedPrefix looks the outputs of blocks [0, k) on ds up in e's
// Prefixes (see prefixKeys for train): keys are the keys of every prefix
// [0, j), j from 1 to k; ent is a filled entry to use, or one that e owns
// (owner true) and must release under keys[k-1] once it has computed the
// outputs. ent is nil when e shares nothing, when the keys cannot be made
// (keys is then nil too), or when the run is stopped while waiting.
func (e *evaluator) sharedPrefix(ds *Dataset, k int, train bool) (keys [][sha256.Size]byte, ent *prefixEntry, owner bool) {
	if e.shared == nil {
		return nil, nil, false
	}
	keys = e.prefixKeys(ds, k, train)
	if keys == nil {
		return nil, nil, false
	}
	ent, owner = e.shared.acquire(e.ctx, keys[k-1])
	return keys, ent, owner
}

// cancelled reports whether e's run is stopped.
func (e *evaluator) cancelled() bool { return e.ctx != nil && e.ctx.Err() != nil }

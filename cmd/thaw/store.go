package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"thaw/store"
	"thaw/trainer"
)

// storeFlag registers --store on a command's flags.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "the run store `dir` (default $THAW_STORE, else $XDG_DATA_HOME/thaw, else ~/.local/share/thaw)")
}

// openStore opens the store in dir, or in the default place when dir is
// empty.
func openStore(dir string) (*store.Store, error) {
	if dir == "" {
		d, err := store.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	s, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// runRecord is what thaw keeps in a stored run's Plan field: the inputs
// thaw train resolved its spec from, and the plan as resolved, so that
// thaw resume can rebuild the same spec and check that it did. The store
// treats it as opaque JSON.
//
// Version 1. Paths are absolute, so that resume works from any folder; a
// plan file's content is kept, so that editing the file later does not
// change the run.
type runRecord struct {
	Version int        `json:"version"`
	Inputs  runInputs  `json:"inputs"`
	Plan    planOutput `json:"plan"`
}

// runRecordVersion is the version of runRecord this thaw writes and reads.
const runRecordVersion = 1

// runInputs are thaw train's flags that shape the run.
type runInputs struct {
	Model     string          `json:"model"`            // zoo name or absolute folder
	Data      string          `json:"data"`             // task name or absolute path
	Labels    string          `json:"labels,omitempty"` // absolute IDX labels path
	Plan      string          `json:"plan"`             // preset name or the plan file as given
	PlanFile  json.RawMessage `json:"plan_file,omitempty"`
	Shots     int             `json:"shots"`
	ValSplit  float64         `json:"val_split"`
	Batch     int             `json:"batch"`
	LR        float64         `json:"lr"`
	Epochs    int             `json:"epochs"`
	Seed      uint64          `json:"seed"`
	EvalEvery int             `json:"eval_every"`
}

// newRunInputs records f, making paths absolute and reading a plan file.
func newRunInputs(f *setupFlags, evalEvery int) (runInputs, error) {
	in := runInputs{
		Model: f.model, Data: f.data.data, Labels: f.data.labels, Plan: f.plan,
		Shots: f.shots, ValSplit: f.valSplit, Batch: f.batch, LR: f.lr, Epochs: f.epochs,
		Seed: f.seed, EvalEvery: evalEvery,
	}
	for _, p := range []*string{&in.Model, &in.Data, &in.Labels} {
		if *p == "" {
			continue
		}
		if _, err := os.Stat(*p); err == nil {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return in, err
			}
			*p = abs
		}
	}
	if f.planJSON != nil {
		in.PlanFile = f.planJSON
	} else if !slices.Contains(presetNames(), f.plan) {
		b, err := os.ReadFile(f.plan)
		if err != nil {
			return in, err
		}
		if !json.Valid(b) {
			return in, usagef("plan %s: not valid JSON", f.plan)
		}
		in.PlanFile = b
	}
	return in, nil
}

// flags turns recorded inputs back into setup flags.
func (in runInputs) flags() setupFlags {
	return setupFlags{
		model: in.Model, data: dataSpec{data: in.Data, labels: in.Labels}, plan: in.Plan,
		planJSON: in.PlanFile, shots: in.Shots, valSplit: in.ValSplit, batch: in.Batch,
		lr: in.LR, epochs: in.Epochs, seed: in.Seed,
	}
}

// decodeRunRecord reads a stored run's Plan field.
func decodeRunRecord(r store.Run) (runRecord, error) {
	var rec runRecord
	if err := json.Unmarshal(r.Plan, &rec); err != nil {
		return rec, fmt.Errorf("run %s: its stored inputs: %w", store.Short(r.ID), err)
	}
	if rec.Version != runRecordVersion {
		return rec, fmt.Errorf("run %s: stored inputs of version %d, this thaw reads %d", store.Short(r.ID), rec.Version, runRecordVersion)
	}
	return rec, nil
}

// hashModel returns the SHA-256 of a model's starting weights, names and
// shapes included: a resumed run checks it got the same model.
func hashModel(m *trainer.Model[float32]) (string, error) {
	sd, err := m.StateDict()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, t := range sd {
		fmt.Fprintf(h, "%s %s %v\n", t.Name, t.DType, t.Shape)
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashData returns the SHA-256 of datasets' samples, labels and classes.
func hashData(sets ...*trainer.Dataset) string {
	h := sha256.New()
	var b [8]byte
	for _, d := range sets {
		fmt.Fprintf(h, "%v %q %d\n", d.Shape, d.Classes, d.Len())
		for _, v := range d.X {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
		for _, y := range d.Y {
			binary.LittleEndian.PutUint64(b[:], uint64(y))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

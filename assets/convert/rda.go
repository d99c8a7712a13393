package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// This file reads the subset of R's XDR serialization format (version 2 or 3,
// as written by save()) needed for a data.frame of integer, double and factor
// columns. The format is described in R Internals, "Serialization Formats".

// R SEXP types used here.
const (
	nilSXP     = 0
	symSXP     = 1
	listSXP    = 2
	charSXP    = 9
	lglSXP     = 10
	intSXP     = 13
	realSXP    = 14
	strSXP     = 16
	vecSXP     = 19
	refSXP     = 255
	nilValSXP  = 254
	globalEnv  = 253
	emptyEnv   = 242
	baseEnv    = 241
	missingArg = 251
	baseNS     = 247
	unboundVal = 252
)

// rNAInt is R's NA for integers.
const rNAInt = math.MinInt32

// robj is a decoded R object: only the fields its type uses are set.
type robj struct {
	typ   int
	ints  []int32   // INTSXP, LGLSXP
	reals []float64 // REALSXP
	strs  []string  // STRSXP; CHARSXP and SYMSXP use strs[0]
	elems []*robj   // VECSXP
	attr  map[string]*robj
	// LISTSXP: tag and value of every cell, in order.
	tags []string
	vals []*robj
}

type rreader struct {
	r    *bytes.Reader
	refs []*robj
}

// readRDA decodes an uncompressed .rda stream ("RDX2\n"/"RDX3\n" then "X\n")
// and returns the objects saved in it, by name.
func readRDA(b []byte) (map[string]*robj, error) {
	if len(b) < 7 || (string(b[:5]) != "RDX2\n" && string(b[:5]) != "RDX3\n") || string(b[5:7]) != "X\n" {
		return nil, errors.New("rda: not an XDR-format RDX2/RDX3 stream (decompress it first)")
	}
	rr := &rreader{r: bytes.NewReader(b[7:])}
	version, err := rr.int()
	if err != nil {
		return nil, err
	}
	if _, err := rr.int(); err != nil { // writer's R version
		return nil, err
	}
	if _, err := rr.int(); err != nil { // minimal R version to read
		return nil, err
	}
	if version == 3 {
		n, err := rr.int()
		if err != nil {
			return nil, err
		}
		if _, err := rr.r.Seek(int64(n), io.SeekCurrent); err != nil { // native encoding
			return nil, err
		}
	} else if version != 2 {
		return nil, fmt.Errorf("rda: serialization version %d not supported", version)
	}
	top, err := rr.item()
	if err != nil {
		return nil, err
	}
	if top.typ != listSXP {
		return nil, fmt.Errorf("rda: top level is SEXP type %d, want a pairlist", top.typ)
	}
	out := make(map[string]*robj, len(top.tags))
	for i, t := range top.tags {
		out[t] = top.vals[i]
	}
	return out, nil
}

func (rr *rreader) int() (int32, error) {
	var v int32
	err := binary.Read(rr.r, binary.BigEndian, &v)
	return v, err
}

func (rr *rreader) length() (int, error) {
	n, err := rr.int()
	if err != nil {
		return 0, err
	}
	if n == -1 { // long vector: two more words
		hi, err := rr.int()
		if err != nil {
			return 0, err
		}
		lo, err := rr.int()
		if err != nil {
			return 0, err
		}
		return int(uint64(uint32(hi))<<32 | uint64(uint32(lo))), nil
	}
	if n < 0 {
		return 0, fmt.Errorf("rda: negative length %d", n)
	}
	return int(n), nil
}

func (rr *rreader) item() (*robj, error) {
	flags, err := rr.int()
	if err != nil {
		return nil, err
	}
	typ := int(flags & 0xff)
	hasAttr := flags&(1<<9) != 0
	hasTag := flags&(1<<10) != 0
	switch typ {
	case nilValSXP, globalEnv, emptyEnv, baseEnv, missingArg, baseNS, unboundVal:
		return &robj{typ: nilSXP}, nil
	case refSXP:
		idx := int(flags >> 8)
		if idx == 0 {
			v, err := rr.int()
			if err != nil {
				return nil, err
			}
			idx = int(v)
		}
		if idx < 1 || idx > len(rr.refs) {
			return nil, fmt.Errorf("rda: reference %d out of range", idx)
		}
		return rr.refs[idx-1], nil
	case symSXP:
		name, err := rr.item() // a CHARSXP
		if err != nil {
			return nil, err
		}
		o := &robj{typ: symSXP, strs: name.strs}
		rr.refs = append(rr.refs, o)
		return o, nil
	case listSXP:
		o := &robj{typ: listSXP}
		for {
			if hasAttr {
				if _, err := rr.item(); err != nil {
					return nil, err
				}
			}
			tag := ""
			if hasTag {
				t, err := rr.item()
				if err != nil {
					return nil, err
				}
				if len(t.strs) > 0 {
					tag = t.strs[0]
				}
			}
			v, err := rr.item()
			if err != nil {
				return nil, err
			}
			o.tags = append(o.tags, tag)
			o.vals = append(o.vals, v)
			// The CDR follows: another cell of the pairlist, or its end.
			next, err := rr.int()
			if err != nil {
				return nil, err
			}
			if next&0xff == nilValSXP {
				return o, nil
			}
			if next&0xff != listSXP {
				return nil, fmt.Errorf("rda: pairlist continues with SEXP type %d", next&0xff)
			}
			hasAttr = next&(1<<9) != 0
			hasTag = next&(1<<10) != 0
		}
	case charSXP:
		n, err := rr.int()
		if err != nil {
			return nil, err
		}
		if n == -1 {
			return &robj{typ: charSXP, strs: []string{"NA"}}, nil
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(rr.r, buf); err != nil {
			return nil, err
		}
		return &robj{typ: charSXP, strs: []string{string(buf)}}, nil
	}

	n, err := rr.length()
	if err != nil {
		return nil, err
	}
	o := &robj{typ: typ}
	switch typ {
	case intSXP, lglSXP:
		o.ints = make([]int32, n)
		if err := binary.Read(rr.r, binary.BigEndian, o.ints); err != nil {
			return nil, err
		}
	case realSXP:
		o.reals = make([]float64, n)
		if err := binary.Read(rr.r, binary.BigEndian, o.reals); err != nil {
			return nil, err
		}
	case strSXP:
		o.strs = make([]string, n)
		for i := range o.strs {
			c, err := rr.item()
			if err != nil {
				return nil, err
			}
			o.strs[i] = c.strs[0]
		}
	case vecSXP:
		o.elems = make([]*robj, n)
		for i := range o.elems {
			if o.elems[i], err = rr.item(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("rda: SEXP type %d not supported", typ)
	}
	if hasAttr {
		a, err := rr.item()
		if err != nil {
			return nil, err
		}
		o.attr = make(map[string]*robj, len(a.tags))
		for i, t := range a.tags {
			o.attr[t] = a.vals[i]
		}
	}
	return o, nil
}

package trainer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// LoadCSV reads a table of labelled samples from the CSV file at path,
// gzipped or not (detected by the gzip magic bytes). See ReadCSV for the
// format. A file larger than opts.MaxBytes is refused before it is read.
func LoadCSV(path string, opts LoadOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkFileSize(f, opts.maxBytes()); err != nil {
		return nil, &DataError{File: path, Offset: -1, Err: err}
	}
	ds, err := ReadCSV(f, path, opts)
	if err != nil {
		return nil, err
	}
	ds.Name = filepath.Base(path)
	return ds, nil
}

// ReadCSV reads a table of labelled samples from r, gzipped or not; name is
// the file name that errors and the dataset carry.
//
// The first row is a header naming every column; names are trimmed of
// spaces (and a UTF-8 byte-order mark) and must be non-empty and distinct.
// The label column is opts.Label, or else "label", or else "class". Every
// other column is a numeric feature, in header order, so samples have shape
// [features]. Cells may have spaces around them. A feature cell must parse as
// a finite float32: empty, non-numeric, NaN, infinite and out-of-range cells
// are errors. A label cell is any non-empty UTF-8 text, kept as it is. Blank lines
// are skipped, as encoding/csv does. With opts.Unlabelled a file without a
// label column loads too: every column is then a feature, the dataset has
// no classes and every label is 0.
//
// With opts.Classes nil, the classes are the distinct labels sorted
// byte-wise (so "10" comes before "2"; see Dataset.Relabel), and a file
// whose labels are all the same is refused (ErrTooFewClasses); otherwise
// they are opts.Classes and any other label is an error. Labels that print
// alike on a terminal are refused (ErrClassNames).
//
// Rows are streamed; more than opts.MaxBytes of (decompressed) input is
// refused, and so is data whose decoded values (4 bytes a feature, 8 a
// label) would pass opts.MaxBytes, at the row that passes it. Errors are *DataError values reading name:line:column: message,
// with encoding/csv's positions for quoting errors.
func ReadCSV(r io.Reader, name string, opts LoadOptions) (*Dataset, error) {
	zr, _, err := maybeGunzip(r)
	if err != nil {
		return nil, &DataError{File: name, Offset: -1, Err: err}
	}
	cr := &capReader{r: zr, limit: opts.maxBytes()}
	cv := csv.NewReader(cr)
	cv.FieldsPerRecord = -1 // checked here, with a better message
	cv.ReuseRecord = true

	at := func(line, col int, format string, args ...any) error {
		return &DataError{File: name, Line: line, Column: col, Offset: -1, Err: fmt.Errorf(format, args...)}
	}
	// lastLine is the line of the last record read; a reading error that
	// is not a csv.ParseError (a gzip error, the size cap) is put after it.
	lastLine := 0
	readErr := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return &DataError{File: name, Line: pe.Line, Column: pe.Column, Offset: -1, Err: pe.Err}
		}
		return &DataError{File: name, Line: lastLine + 1, Offset: -1, Err: err}
	}

	header, err := cv.Read()
	if err == io.EOF {
		return nil, at(1, 0, "empty file, want a header row")
	}
	if err != nil {
		return nil, readErr(err)
	}
	header = slices.Clone(header) // ReuseRecord would overwrite it
	lastLine, _ = cv.FieldPos(0)
	seen := make(map[string]int, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		h = strings.TrimSpace(h)
		header[i] = h
		line, col := cv.FieldPos(i)
		if h == "" {
			return nil, at(line, col, "column %d has an empty name", i+1)
		}
		if j, dup := seen[h]; dup {
			return nil, at(line, col, "column %d has the same name %s as column %d", i+1, quote(h), j+1)
		}
		seen[h] = i
	}

	labelCol := -1
	want := opts.Label
	if want != "" {
		if i, ok := seen[want]; ok {
			labelCol = i
		}
	} else if i, ok := seen["label"]; ok {
		labelCol = i
	} else if i, ok := seen["class"]; ok {
		labelCol = i
	}
	if labelCol < 0 && !opts.Unlabelled {
		if want == "" {
			want = `"label" or "class"`
		} else {
			want = quote(want)
		}
		return nil, at(1, 0, "no label column: want %s, the header has %s", want, quoteNames(header))
	}
	nf := len(header) - 1
	if labelCol < 0 {
		nf = len(header) // unlabelled: every column is a feature
	}
	if nf == 0 {
		return nil, at(1, 0, "no feature columns: the header has only the label column %s", quote(header[labelCol]))
	}

	// Labels get ids in order of appearance (or from opts.Classes) while
	// streaming; sorted ids replace them at the end.
	ids := make(map[string]int)
	var names []string
	for i, c := range opts.Classes {
		if _, dup := ids[c]; dup {
			return nil, fmt.Errorf("%s: class %s appears twice in LoadOptions.Classes", name, quote(c))
		}
		ids[c] = i
	}
	ds := &Dataset{Name: name, Shape: []int{nf}}
	mem := &budget{limit: opts.maxBytes()}
	// A class costs its name and a map entry, roughly.
	const classCost = 64
	for {
		rec, err := cv.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
		lastLine, _ = cv.FieldPos(0)
		if len(rec) != len(header) {
			// Point at the first extra field, or at the last one there is.
			line, col := cv.FieldPos(min(len(rec)-1, len(header)))
			return nil, at(line, col, "%d fields, want %d as in the header", len(rec), len(header))
		}
		if len(ds.Y) == cap(ds.Y) {
			// Grow features and labels together, row by row, so that the
			// capacity held, not only the values, stays within the budget.
			rows, err := mem.growRows(cap(ds.Y), int64(nf)*4+8)
			if err != nil {
				return nil, at(lastLine, 0, "%w", err)
			}
			x := make([]float32, len(ds.X), rows*nf)
			copy(x, ds.X)
			y := make([]int, len(ds.Y), rows)
			copy(y, ds.Y)
			ds.X, ds.Y = x, y
		}
		for i, cell := range rec {
			if i == labelCol {
				continue
			}
			s := strings.TrimSpace(cell)
			v, err := strconv.ParseFloat(s, 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				line, col := cv.FieldPos(i)
				switch {
				case s == "":
					return nil, at(line, col, "column %s is empty, want a number", quote(header[i]))
				case errors.Is(err, strconv.ErrRange):
					return nil, at(line, col, "column %s: %s is out of float32 range", quote(header[i]), quote(s))
				case err != nil:
					return nil, at(line, col, "column %s: %s is not a number", quote(header[i]), quote(s))
				default:
					return nil, at(line, col, "column %s: %s is not finite", quote(header[i]), quote(s))
				}
			}
			ds.X = append(ds.X, float32(v))
		}
		if labelCol < 0 {
			ds.Y = append(ds.Y, 0)
			continue
		}
		label := strings.TrimSpace(rec[labelCol])
		id, ok := ids[label]
		if !ok {
			line, col := cv.FieldPos(labelCol)
			if label == "" {
				return nil, at(line, col, "empty label")
			}
			if !utf8.ValidString(label) {
				// A class name is written to model files and JSON as
				// UTF-8; an invalid one would come back as another name.
				return nil, at(line, col, "label %s is not valid UTF-8", quote(label))
			}
			if opts.Classes != nil {
				return nil, at(line, col, "label %s is not one of the %d classes %s", quote(label), len(opts.Classes), quoteNames(opts.Classes))
			}
			if err := mem.take(int64(len(label)) + classCost); err != nil {
				return nil, at(line, col, "%w", err)
			}
			id = len(names)
			ids[label] = id
			names = append(names, label)
		}
		ds.Y = append(ds.Y, id)
	}
	if ds.Len() == 0 {
		return nil, at(1, 0, "no data rows after the header")
	}

	if labelCol < 0 {
		return ds, nil
	}
	if opts.Classes != nil {
		ds.Classes = slices.Clone(opts.Classes)
		if err := checkLoaded(name, nil, ds.Classes, true); err != nil {
			return nil, err
		}
		return ds, nil
	}
	ds.Classes = slices.Clone(names)
	slices.Sort(ds.Classes)
	remap := make([]int, len(names))
	for i, c := range names {
		remap[i], _ = slices.BinarySearch(ds.Classes, c)
	}
	for i, y := range ds.Y {
		ds.Y[i] = remap[y]
	}
	if err := checkLoaded(name, ds.ClassCounts(), ds.Classes, false); err != nil {
		return nil, err
	}
	return ds, nil
}

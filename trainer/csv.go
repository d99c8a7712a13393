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
	if err := checkFileSize(f, opts.budget()); err != nil {
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
// Rows are streamed against one memory budget, opts.MaxBytes: more than
// that of (decompressed) input is refused; so is a record (a line, or
// lines when a quoted field spans them) whose text encoding/csv would
// buffer passes what is left of it (csvByteCost bytes a byte of text,
// csvFieldCost a field), refused before encoding/csv holds it; and so is
// data whose decoded values (4 bytes a feature, 8 a label, counted twice:
// rows are kept in chunks of a fixed size, then copied into one table)
// would pass it, at the row that passes it. Errors are *DataError values
// reading name:line:column: message, with encoding/csv's positions for
// quoting errors.
func ReadCSV(r io.Reader, name string, opts LoadOptions) (*Dataset, error) {
	zr, _, err := maybeGunzip(r)
	if err != nil {
		return nil, &DataError{File: name, Offset: -1, Err: err}
	}
	mem := opts.budget()
	lr := &recordLimiter{r: &capReader{r: zr, mem: mem}, mem: mem, line: 1, at: 1}
	cv := csv.NewReader(lr)
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
		var big *recordTooLarge
		switch {
		case errors.As(err, &big):
			return &DataError{File: name, Line: big.line, Offset: -1, Err: big}
		case errors.As(err, &pe):
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
	rows := newRowChunks(nf, mem)
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
		x, err := rows.next()
		if err != nil {
			return nil, at(lastLine, 0, "%w", err)
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
			x[0] = float32(v)
			x = x[1:]
		}
		if labelCol < 0 {
			rows.label(0)
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
		rows.label(id)
	}
	ds.X, ds.Y = rows.table()
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

// What encoding/csv holds for a record, per byte of its text and per
// field, so that a record can be refused before it is buffered: the
// line's raw buffer and the unquoted fields' buffer, each grown by
// appending (up to 2.25 times what they hold while a copy is made), and
// the record as one string; per field an end index, a position (line and
// column) and a string header, grown by appending the same way, and for
// the header row a name in a map.
const (
	csvByteCost  = 6
	csvFieldCost = 128
)

// recordTooLarge is the error for a CSV record that would pass the budget.
type recordTooLarge struct {
	line  int   // where the record starts
	bytes int64 // of text read when it was refused
	mem   *budget
}

func (e *recordTooLarge) Error() string {
	return fmt.Sprintf("record is %s: its first %s of text would take more than is left of the %s limit to buffer (%s)",
		ErrTooLarge, formatBytes(e.bytes), formatBytes(e.mem.limit), e.mem.limitName())
}

func (e *recordTooLarge) Unwrap() error { return ErrTooLarge }

// recordLimiter passes a CSV stream through to encoding/csv, following
// its records as it goes (newlines outside quotes end one; a quote
// toggles quoting, which a doubled quote inside quotes toggles back), and
// fails once the record it is in would cost encoding/csv more than mem
// has left: a single line, or a quoted field spanning many, can then
// never grow encoding/csv's buffers past the budget. A bare quote in an
// unquoted field may make it see a longer record than encoding/csv does;
// encoding/csv refuses such a line anyway, usually first.
type recordLimiter struct {
	r      io.Reader
	mem    *budget
	quoted bool
	line   int   // the line the current record starts on, from 1
	at     int   // the line being read
	bytes  int64 // of the current record, read so far
	fields int64 // of the current record, read so far
	err    error
}

func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	start := 0 // of the current record in p
	for i, c := range p[:n] {
		switch c {
		case '"':
			l.quoted = !l.quoted
		case ',':
			if !l.quoted {
				l.fields++
			}
		case '\n':
			l.at++
			if l.quoted {
				break
			}
			if !l.fits(int64(i + 1 - start)) {
				return start, l.err
			}
			l.bytes, l.fields, start = 0, 0, i+1
			l.line = l.at
		}
	}
	if !l.fits(int64(n - start)) {
		return start, l.err
	}
	l.bytes += int64(n - start)
	return n, err
}

// fits reports whether the current record, k more bytes of it read, fits
// what the budget has left, and sets l.err when it does not.
func (l *recordLimiter) fits(k int64) bool {
	b := l.bytes + k
	if b*csvByteCost+(l.fields+1)*csvFieldCost <= l.mem.limit-l.mem.used {
		return true
	}
	// Nothing of the record passes on: encoding/csv gets the error with
	// the records before it.
	l.err = &recordTooLarge{line: l.line, bytes: b, mem: l.mem}
	return false
}

// csvChunkBytes is the size of a chunk of decoded CSV rows.
const csvChunkBytes = 1 << 20

// rowChunks holds a table's rows as they are decoded, in chunks of a
// fixed size taken from a budget one at a time, so that what it holds
// grows a chunk at a time, never by copying all it holds into a slice
// twice the size as append does.
type rowChunks struct {
	width     int // features a row
	chunkRows int // rows a chunk
	mem       *budget
	x         [][]float32
	y         [][]int
	n         int // rows
	lastRow   int // rows of the last chunk in use
}

// newRowChunks returns an empty table of rows of width features,
// counting against mem: chunks of about csvChunkBytes, or a sixteenth of
// the budget when that is less, and at least one row.
func newRowChunks(width int, mem *budget) *rowChunks {
	rowBytes := int64(width)*4 + 8
	per := max(1, min(csvChunkBytes, mem.limit/16)/rowBytes)
	return &rowChunks{width: width, chunkRows: int(per), mem: mem}
}

// next returns the features of a new row to fill; label then gives its
// label. A new chunk is taken from the budget twice: once for itself and
// once for its share of the table that table copies the rows into.
func (t *rowChunks) next() ([]float32, error) {
	if len(t.x) == 0 || t.lastRow == t.chunkRows {
		cost := 2 * int64(t.chunkRows) * (int64(t.width)*4 + 8)
		if err := t.mem.take(cost); err != nil {
			return nil, err
		}
		t.x = append(t.x, make([]float32, t.chunkRows*t.width))
		t.y = append(t.y, make([]int, t.chunkRows))
		t.lastRow = 0
	}
	k := len(t.x) - 1
	row := t.x[k][t.lastRow*t.width : (t.lastRow+1)*t.width]
	return row, nil
}

// label sets the label of the row next returned last, which is then
// complete.
func (t *rowChunks) label(y int) {
	t.y[len(t.y)-1][t.lastRow] = y
	t.lastRow++
	t.n++
}

// table copies the rows into one table of features and one of labels,
// letting each chunk go once it is copied.
func (t *rowChunks) table() ([]float32, []int) {
	x := make([]float32, 0, t.n*t.width)
	y := make([]int, 0, t.n)
	for k := range t.x {
		rows := t.chunkRows
		if k == len(t.x)-1 {
			rows = t.lastRow
		}
		x = append(x, t.x[k][:rows*t.width]...)
		y = append(y, t.y[k][:rows]...)
		t.x[k], t.y[k] = nil, nil
	}
	t.x, t.y = nil, nil
	return x, y
}

package trainer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"

	"thaw/trainer/termtext"
)

// Dataset is a set of labelled samples held in memory as float32, the
// element type the trainer uses. Every sample has the same shape: [features]
// for tables, [channels, height, width] for images, as in Config.InputShape.
//
// A Dataset holds raw values (pixels in [0,1], features as read). It is not
// normalised: Model.Forward applies the config's normalisation, so
// normalising here as well would apply it twice.
type Dataset struct {
	// Name identifies the dataset in the UI and in runs, usually the file
	// or folder it came from.
	Name string
	// Shape is the shape of one sample.
	Shape []int
	// X holds the samples one after another, row-major: sample i is
	// X[i*SampleSize() : (i+1)*SampleSize()].
	X []float32
	// Y holds one label per sample, an index into Classes.
	Y []int
	// Classes names the labels, in order.
	Classes []string
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.Y) }

// SampleSize returns the number of values in one sample, the product of
// Shape.
func (d *Dataset) SampleSize() int { return numel(d.Shape) }

// Sample returns the values of sample i, aliasing X.
func (d *Dataset) Sample(i int) []float32 {
	n := d.SampleSize()
	return d.X[i*n : (i+1)*n : (i+1)*n]
}

// Validate checks the dataset's invariants: a sample shape with positive
// dimensions, as many values as samples times the sample size, labels that
// index Classes, and class names that are distinct and can be told apart
// once printed (see ErrClassNames).
func (d *Dataset) Validate() error {
	if len(d.Shape) == 0 {
		return fmt.Errorf("dataset %s: empty sample shape", quote(d.Name))
	}
	for _, s := range d.Shape {
		if s <= 0 {
			return fmt.Errorf("dataset %s: sample shape %v has a non-positive dimension", quote(d.Name), d.Shape)
		}
	}
	if want := len(d.Y) * d.SampleSize(); len(d.X) != want {
		return fmt.Errorf("dataset %s: %d values for %d samples of shape %v, want %d", quote(d.Name), len(d.X), len(d.Y), d.Shape, want)
	}
	for i, y := range d.Y {
		if y < 0 || y >= len(d.Classes) {
			return fmt.Errorf("dataset %s: sample %d has label %d, want 0 to %d", quote(d.Name), i, y, len(d.Classes)-1)
		}
	}
	seen := make(map[string]bool, len(d.Classes))
	for _, c := range d.Classes {
		if seen[c] {
			return fmt.Errorf("dataset %s: class %s appears twice", quote(d.Name), quote(c))
		}
		seen[c] = true
	}
	if err := checkClassNames(d.Classes); err != nil {
		return fmt.Errorf("dataset %s: %w", quote(d.Name), err)
	}
	return nil
}

// ErrTooFewClasses is wrapped by the error for data whose samples are all
// of one class, which every loader refuses: there is nothing to tell apart.
var ErrTooFewClasses = errors.New("fine-tuning a classifier needs at least two classes")

// ErrClassNames is wrapped by the error for class names that cannot be
// told apart once printed (see termtext.Clash): "A" and "\x1b[1mA" both
// print as A, and a name made only of an escape sequence prints as nothing.
var ErrClassNames = errors.New("class names cannot be told apart once printed")

// CheckClasses returns an error wrapping ErrTooFewClasses, naming the
// dataset and its one class, if fewer than two classes have samples in d.
// The loaders refuse such data already; a caller that subsamples (Split,
// KShot) or relabels can call it again.
func (d *Dataset) CheckClasses() error {
	if err := tooFewClasses(d.ClassCounts(), d.Classes); err != nil {
		return fmt.Errorf("dataset %s: %w", quote(d.Name), err)
	}
	return nil
}

// tooFewClasses is CheckClasses's test, on per-class sample counts.
func tooFewClasses(counts []int, classes []string) error {
	present, only := 0, -1
	for c, n := range counts {
		if n > 0 {
			present++
			only = c
		}
	}
	switch {
	case present >= 2:
		return nil
	case present == 0:
		return fmt.Errorf("no samples: %w", ErrTooFewClasses)
	}
	return fmt.Errorf("every sample is of class %s: %w", quote(classes[only]), ErrTooFewClasses)
}

// nClasses says how many classes: "1 class", "0 classes".
func nClasses(n int) string {
	if n == 1 {
		return "1 class"
	}
	return fmt.Sprintf("%d classes", n)
}

// checkLoaded applies the loaders' class checks to the data of file: two
// classes with samples when the loader chose the classes (fixed is false),
// and names that can be told apart.
func checkLoaded(file string, counts []int, classes []string, fixed bool) error {
	if !fixed {
		if err := tooFewClasses(counts, classes); err != nil {
			return &DataError{File: file, Offset: -1, Err: err}
		}
	}
	if err := checkClassNames(classes); err != nil {
		return &DataError{File: file, Offset: -1, Err: err}
	}
	return nil
}

// checkClassNames returns an error wrapping ErrClassNames if two of
// classes look alike on a terminal or one shows as nothing.
func checkClassNames(classes []string) error {
	i, j, clash := termtext.Clash(classes)
	switch {
	case !clash:
		return nil
	case j < 0:
		return fmt.Errorf("%w: class %s prints as nothing; rename it", ErrClassNames, quote(classes[i]))
	}
	return fmt.Errorf("%w: classes %s and %s both print as %s; rename one",
		ErrClassNames, quote(classes[i]), quote(classes[j]), quote(termtext.Shown(classes[i])))
}

// Batch copies the samples named by indices into dstX, reshaped to
// [len(indices), Shape...], and their labels into dstY, and returns the
// labels slice. dstX's storage is reused when it is large enough and dstY is
// extended only when its capacity is too small, so a training loop that
// passes the same buffers every step allocates nothing after the first
// batch.
//
// Batch panics if dstX is nil or an index is out of range.
func (d *Dataset) Batch(dstX *Tensor[float32], dstY []int, indices []int) []int {
	n := d.SampleSize()
	b := len(indices)
	if cap(dstX.Data) < b*n {
		dstX.Data = make([]float32, b*n)
	}
	dstX.Data = dstX.Data[:b*n]
	dstX.Shape = append(append(dstX.Shape[:0], b), d.Shape...)
	dstY = dstY[:0]
	for j, i := range indices {
		copy(dstX.Data[j*n:(j+1)*n], d.X[i*n:(i+1)*n])
		dstY = append(dstY, d.Y[i])
	}
	return dstY
}

// Batches returns one epoch's batches of sample indices: a permutation of
// 0..Len()-1 drawn from rng, cut into batches of size samples; the last
// batch is shorter when size does not divide Len(). A nil rng keeps the
// samples in order, for evaluation. The batches share one backing slice.
//
// Batches panics if size is not positive.
func (d *Dataset) Batches(rng *rand.Rand, size int) [][]int {
	if size <= 0 {
		panic(fmt.Sprintf("trainer: batch size %d is not positive", size))
	}
	order := make([]int, d.Len())
	for i := range order {
		order[i] = i
	}
	if rng != nil {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	batches := make([][]int, 0, (len(order)+size-1)/size)
	for lo := 0; lo < len(order); lo += size {
		hi := min(lo+size, len(order))
		batches = append(batches, order[lo:hi:hi])
	}
	return batches
}

// Subset returns a new dataset holding copies of the samples named by
// indices, in that order, with the same classes. It panics if an index is
// out of range.
func (d *Dataset) Subset(indices []int) *Dataset {
	n := d.SampleSize()
	s := &Dataset{
		Name:    d.Name,
		Shape:   slices.Clone(d.Shape),
		X:       make([]float32, 0, len(indices)*n),
		Y:       make([]int, 0, len(indices)),
		Classes: slices.Clone(d.Classes),
	}
	for _, i := range indices {
		s.X = append(s.X, d.X[i*n:(i+1)*n]...)
		s.Y = append(s.Y, d.Y[i])
	}
	return s
}

// ClassCounts returns the number of samples of each class, indexed like
// Classes.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, y := range d.Y {
		counts[y]++
	}
	return counts
}

// byClass returns the sample indices of each class, in dataset order.
func (d *Dataset) byClass() [][]int {
	idx := make([][]int, len(d.Classes))
	for i, y := range d.Y {
		idx[y] = append(idx[y], i)
	}
	return idx
}

// shuffleInts permutes x in place with rng (Fisher–Yates, as rand.Shuffle).
func shuffleInts(rng *rand.Rand, x []int) {
	rng.Shuffle(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
}

// Split divides the dataset into training and validation sets, stratified
// by class: each class sends round(valFrac × its count) of its samples, drawn
// with rng, to validation and the rest to training. A class with at least
// two samples keeps at least one on each side; a class with one sample puts
// it in training. Both sets keep the dataset's order and classes. The same
// rng state gives the same split.
//
// Split returns an error if valFrac is not strictly between 0 and 1.
func (d *Dataset) Split(rng *rand.Rand, valFrac float64) (train, val *Dataset, err error) {
	tr, va, err := d.splitIndices(rng, valFrac)
	if err != nil {
		return nil, nil, err
	}
	return d.Subset(tr), d.Subset(va), nil
}

// splitIndices is Split's draw: the sorted indices of the training and
// validation samples.
func (d *Dataset) splitIndices(rng *rand.Rand, valFrac float64) (tr, va []int, err error) {
	if !(valFrac > 0 && valFrac < 1) {
		return nil, nil, fmt.Errorf("dataset %s: validation fraction %v, want between 0 and 1", quote(d.Name), valFrac)
	}
	for _, idx := range d.byClass() {
		n := len(idx)
		if n == 0 {
			continue
		}
		nv := int(math.Round(valFrac * float64(n)))
		if n >= 2 {
			nv = min(max(nv, 1), n-1)
		} else {
			nv = 0
		}
		shuffleInts(rng, idx)
		va = append(va, idx[:nv]...)
		tr = append(tr, idx[nv:]...)
	}
	slices.Sort(tr)
	slices.Sort(va)
	return tr, va, nil
}

// KShot returns k samples of every class, drawn with rng, in dataset order
// (few-shot subsampling). It returns an error naming the first class, in
// class order, that has fewer than k samples, and an error if k is not
// positive.
func (d *Dataset) KShot(rng *rand.Rand, k int) (*Dataset, error) {
	keep, err := d.kshotIndices(nil, rng, k)
	if err != nil {
		return nil, err
	}
	return d.Subset(keep), nil
}

// kshotIndices is KShot's draw on the subset of d that among names (all
// of d when nil): the sorted indices, into d, of the samples kept. It
// draws what KShot draws on d.Subset(among).
func (d *Dataset) kshotIndices(among []int, rng *rand.Rand, k int) ([]int, error) {
	if k <= 0 {
		return nil, fmt.Errorf("dataset %s: %d shots per class, want at least 1", quote(d.Name), k)
	}
	var byClass [][]int
	if among == nil {
		byClass = d.byClass()
	} else {
		byClass = make([][]int, len(d.Classes))
		for i, j := range among {
			byClass[d.Y[j]] = append(byClass[d.Y[j]], i)
		}
	}
	var keep []int
	for c, idx := range byClass {
		if len(idx) < k {
			return nil, fmt.Errorf("dataset %s: class %s has %d samples, fewer than the %d shots asked for", quote(d.Name), quote(d.Classes[c]), len(idx), k)
		}
		shuffleInts(rng, idx)
		keep = append(keep, idx[:k]...)
	}
	slices.Sort(keep)
	if among != nil {
		for i, j := range keep {
			keep[i] = among[j]
		}
	}
	return keep, nil
}

// splitKShot is Split followed by KShot on the training set, with the
// same draws from rng and the same results, without copying the samples
// of the training set that the shots leave out.
func (d *Dataset) splitKShot(rng *rand.Rand, valFrac float64, k int) (train, val *Dataset, err error) {
	tr, va, err := d.splitKShotIndices(rng, valFrac, k)
	if err != nil {
		return nil, nil, err
	}
	return d.Subset(tr), d.Subset(va), nil
}

// splitKShotIndices is splitKShot's draw: the sorted indices of the
// training shots and of the validation samples.
func (d *Dataset) splitKShotIndices(rng *rand.Rand, valFrac float64, k int) (tr, va []int, err error) {
	tr, va, err = d.splitIndices(rng, valFrac)
	if err != nil {
		return nil, nil, err
	}
	if tr, err = d.kshotIndices(tr, rng, k); err != nil {
		return nil, nil, err
	}
	return tr, va, nil
}

// Relabel changes the class list to classes, remapping every label, so a
// dataset whose classes come in another order (sorted folder names, say)
// lines up with a model's head. classes may name classes the dataset does
// not have. It returns an error naming a dataset class missing from
// classes, or a class named twice, and leaves the dataset unchanged then.
func (d *Dataset) Relabel(classes []string) error {
	pos := make(map[string]int, len(classes))
	for i, c := range classes {
		if _, dup := pos[c]; dup {
			return fmt.Errorf("relabel dataset %s: class %s appears twice", quote(d.Name), quote(c))
		}
		pos[c] = i
	}
	remap := make([]int, len(d.Classes))
	for i, c := range d.Classes {
		j, ok := pos[c]
		if !ok {
			return fmt.Errorf("relabel dataset %s: class %s is not among %s", quote(d.Name), quote(c), quoteNames(classes))
		}
		remap[i] = j
	}
	for i, y := range d.Y {
		d.Y[i] = remap[y]
	}
	d.Classes = slices.Clone(classes)
	return nil
}

// ErrShapeMismatch and ErrClassMismatch are wrapped by CheckConfig's errors,
// so a caller that replaces the head can accept other classes but not
// another input shape.
var (
	ErrShapeMismatch = errors.New("sample shape does not match the model's input")
	ErrClassMismatch = errors.New("classes do not match the model's")
)

// CheckConfig reports whether the dataset fits the model described by cfg:
// its sample shape must equal cfg.InputShape and its classes must equal
// cfg.Classes, in order. The error says both sides and wraps
// ErrShapeMismatch or ErrClassMismatch. The shape is checked first.
func (d *Dataset) CheckConfig(cfg *Config) error {
	if !sameShape(d.Shape, cfg.InputShape) {
		return fmt.Errorf("%w: dataset %s has samples of shape %v, model %s takes %v",
			ErrShapeMismatch, quote(d.Name), d.Shape, quote(cfg.Name), cfg.InputShape)
	}
	if !slices.Equal(d.Classes, cfg.Classes) {
		return fmt.Errorf("%w: dataset %s has %s %s, model %s has %s %s",
			ErrClassMismatch, quote(d.Name), nClasses(len(d.Classes)), quoteNames(d.Classes), quote(cfg.Name), nClasses(len(cfg.Classes)), quoteNames(cfg.Classes))
	}
	return nil
}

// FitNormalization returns the mean and standard deviation of every
// channel of d (Shape[0]: image channels, or table features), over all
// samples and positions, for a config's Normalize. The standard deviation is
// the population one (divide by the count), accumulated in float64; a
// constant channel gets std 1 so the result is always a valid
// normalisation. An empty dataset gives mean 0 and std 1. It panics if
// d.Shape is empty.
func FitNormalization(d *Dataset) Normalization {
	ch := d.Shape[0]
	inner := d.SampleSize() / ch
	sum := make([]float64, ch)
	sq := make([]float64, ch)
	n := d.Len()
	for i := 0; i < n; i++ {
		s := d.Sample(i)
		for c := 0; c < ch; c++ {
			for _, v := range s[c*inner : (c+1)*inner] {
				sum[c] += float64(v)
			}
		}
	}
	cnt := float64(n * inner)
	nz := Normalization{Mean: make([]float64, ch), Std: make([]float64, ch)}
	for c := range nz.Mean {
		if cnt > 0 {
			nz.Mean[c] = sum[c] / cnt
		}
	}
	// Two passes, deviations from the mean, so large offsets do not cancel.
	for i := 0; i < n; i++ {
		s := d.Sample(i)
		for c := 0; c < ch; c++ {
			m := nz.Mean[c]
			for _, v := range s[c*inner : (c+1)*inner] {
				e := float64(v) - m
				sq[c] += e * e
			}
		}
	}
	for c := range nz.Std {
		nz.Std[c] = 1
		if cnt > 0 {
			if s := math.Sqrt(sq[c] / cnt); s > 0 {
				nz.Std[c] = s
			}
		}
	}
	return nz
}

// LoadOptions tunes the dataset loaders. The zero value is ready to use.
type LoadOptions struct {
	// MaxBytes is the memory budget of one load: the decoded values
	// (samples as float32, labels) and what decoding holds on the way (an
	// IDX file's raw elements, a CSV record's text as encoding/csv buffers
	// it, one decoded image and its planes) are counted against it
	// together, before they are allocated, and the load is refused,
	// naming the file and the limit, once they would pass it. It also caps
	// the bytes a CSV reader reads after decompression, and a file larger
	// than it is refused before it is read. Zero or negative means
	// DefaultMaxBytes(); a front-end offers a flag to raise it.
	MaxBytes int64
	// MaxBytesName is what raises MaxBytes, named in the errors of a load
	// that passes it: a front-end's flag, such as "--max-data-bytes".
	// Empty means "LoadOptions.MaxBytes".
	MaxBytesName string
	// Classes, when set, fixes the class names and their order: labels are
	// looked up in it and a label not in it is an error. Nil means the
	// loader's own order (sorted names, or label values for IDX).
	Classes []string
	// Label names the label column of a CSV file. Empty means "label", or
	// "class" when there is no "label" column.
	Label string
	// Unlabelled lets data without labels load, for a model to label: a
	// CSV file without a label column, a flat folder of images (see
	// LoadImageFolder). Such a dataset has no Classes and every label is
	// 0; data that has labels loads with them as usual.
	Unlabelled bool
}

func (o LoadOptions) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes()
}

// Check returns nil when n bytes of decoded data fit o's budget, and
// otherwise an error wrapping ErrTooLarge that names what raises the
// limit: for a loader outside this package, such as the built-in tasks',
// to count what it is about to allocate, before it does.
func (o LoadOptions) Check(n int64) error {
	b := o.budget()
	return b.take(n)
}

// budget returns a fresh budget of o's limit.
func (o LoadOptions) budget() *budget {
	return &budget{limit: o.maxBytes(), name: o.MaxBytesName}
}

// DefaultMaxDataBytes is the memory budget of the data one run loads when
// its caller gives none (LoadOptions.MaxBytes): 256 MiB, the built-in
// tasks with room to spare (MNIST's 60,000 training images are 188 MB
// as float32), while a hostile or mistaken file is refused long before
// it costs a machine its memory.
const DefaultMaxDataBytes = 256 << 20

// DefaultMaxBytes returns the loaders' default budget, DefaultMaxDataBytes.
func DefaultMaxBytes() int64 { return DefaultMaxDataBytes }

// RunMemoryLimit is the soft memory limit (runtime/debug.SetMemoryLimit)
// for a process that runs one job whose data may take maxData bytes
// (zero or less: DefaultMaxDataBytes): the data twice (as loaded, and its
// training and validation subsets), the evaluation caches (at most
// maxCacheBytes for each of the validation, training and source sets)
// and 256 MiB for the model, a batch's activations and the runtime. The
// garbage collector then works harder near it instead of letting the
// heap grow to twice what is live; it is a limit on the collector's
// pacing, not an allocation cap, which the budgets are.
func RunMemoryLimit(maxData int64) int64 {
	if maxData <= 0 {
		maxData = DefaultMaxDataBytes
	}
	return 2*maxData + 3*maxCacheBytes + 256<<20
}

// DataError locates a problem in a data file. Its message reads
//
//	file:line:column: message   (CSV; column 0 is left out)
//	file: byte N: message       (binary formats such as IDX)
//	file: message               (anything else, such as an image)
//
// Offsets into a gzipped file count decompressed bytes and say so.
type DataError struct {
	File         string // the path or name given to the loader
	Line, Column int    // 1-based position in a text file; 0 when not applicable
	Offset       int64  // byte offset in a binary file; -1 when not applicable
	Decompressed bool   // Offset counts bytes after gzip decompression
	Err          error
}

func (e *DataError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	switch {
	case e.Line > 0:
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	case e.Offset >= 0:
		fmt.Fprintf(&b, ": byte %d", e.Offset)
		if e.Decompressed {
			b.WriteString(" (decompressed)")
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *DataError) Unwrap() error { return e.Err }

// ErrTooLarge is wrapped by the errors of loaders that refuse a file over
// LoadOptions.MaxBytes.
var ErrTooLarge = errors.New("too large")

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// maybeGunzip returns a reader of r's content, decompressed when it starts
// with the gzip magic bytes, and whether it was.
func maybeGunzip(r io.Reader) (io.Reader, bool, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	if !bytes.Equal(head, gzipMagic) {
		return br, false, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, true, fmt.Errorf("gzip: %w", err)
	}
	return zr, true, nil
}

// capReader reads from r until more than limit bytes have come, then
// fails with an error wrapping ErrTooLarge, so a small gzip file cannot
// expand into more memory than the cap allows.
type capReader struct {
	r   io.Reader
	n   int64
	mem *budget // whose limit caps the bytes read
}

func (c *capReader) Read(p []byte) (int, error) {
	limit := c.mem.limit
	if c.n > limit {
		return 0, c.err()
	}
	// rem overflows to negative only for a limit of MaxInt64: no cap then.
	if rem := limit - c.n + 1; rem > 0 && int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > limit {
		return n, c.err()
	}
	return n, err
}

func (c *capReader) err() error {
	return fmt.Errorf("data is %w: more than the %s limit (%s)", ErrTooLarge, formatBytes(c.mem.limit), c.mem.limitName())
}

// budget counts the bytes a load holds against LoadOptions.MaxBytes, so
// that what the loaders allocate, not only what they read, stays under it.
type budget struct {
	limit, used int64
	name        string // LoadOptions.MaxBytesName
}

// limitName is what raises the limit, for a message.
func (b *budget) limitName() string {
	if b.name == "" {
		return "LoadOptions.MaxBytes"
	}
	return b.name
}

// err is the error for a load that would pass the budget.
func (b *budget) err() error {
	return fmt.Errorf("decoded data is %w: it passes the %s limit (%s)", ErrTooLarge, formatBytes(b.limit), b.limitName())
}

// take counts n more bytes, or returns b.err() and counts nothing if they
// do not fit.
func (b *budget) take(n int64) error {
	if n < 0 || n > b.limit-b.used {
		return b.err()
	}
	b.used += n
	return nil
}

// give returns n bytes taken before.
func (b *budget) give(n int64) { b.used -= n }

// checkFileSize refuses a file larger than mem's limit before reading it.
func checkFileSize(f *os.File, mem *budget) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().IsRegular() && st.Size() > mem.limit {
		return fmt.Errorf("file of %s is %w: over the %s limit (%s)", formatBytes(st.Size()), ErrTooLarge, formatBytes(mem.limit), mem.limitName())
	}
	return nil
}

// formatBytes formats n bytes for a message: "512 B", "3.2 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}

// maxQuoted bounds how much of an untrusted string goes into a message.
const maxQuoted = 64

// quote renders untrusted text (a header name, a label, a file name) for an
// error message: Go-quoted, so control characters cannot reach a terminal
// raw, and cut short when long.
func quote(s string) string {
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// quoteNames renders a list of untrusted names, the first few of them.
func quoteNames(names []string) string {
	const show = 8
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range names {
		if i == show {
			fmt.Fprintf(&b, " … %d more", len(names)-show)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quote(s))
	}
	b.WriteByte(']')
	return b.String()
}

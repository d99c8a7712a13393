// Package export renders a run's metrics as figures fit for a paper and as
// CSV: learning curves (one run, or several overlaid), and per-block drift
// from the pretrained weights.
//
// The output format follows the file extension: .png, .svg, .pdf or .csv
// (see FormatOf and WriteFile). Figures are drawn with gonum/plot; the
// package does not import bubbletea and keeps its own small input types
// (Run, Series, Stage), which callers fill from the store.
//
// Nothing here panics on bad data. Non-finite values, and values ≤ 0 on a
// log axis, are dropped before drawing, and each drop is described in the
// notes the rendering functions return, so a command can print them.
package export

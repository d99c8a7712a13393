// Package chart draws the workbench's line charts in braille: 2×4 dots
// per terminal cell, one SGR sequence per change of colour along a row
// rather than one per cell.
//
// A Chart keeps every point it is given and folds each into a min, max,
// first and last per dot column as it arrives (M4 aggregation, as
// ui/export decimates for its figures), so rasterising costs the same for
// a run of a million steps as for a short one; only a change of width or
// x range goes over the history again. Render rasterises into a cached
// string and View returns it, so a screen renders when data arrives and
// composes strings per frame.
//
// It draws line series (a faint raw series behind a smoothed one, EMA
// being TensorBoard's debiased average, the same as export.Smooth),
// series with point markers (validation), lines broken where a value is
// not finite (a block's learning rate while it is frozen, in the Plan
// screen's preview), vertical marks with labels (stage boundaries), a
// best-point marker, an inspect cursor, a log y
// axis, a y range that ignores outliers (5th to 95th percentile, as
// TensorBoard's option), and a zoom to an x range.
package chart

// # Why not ntcharts
//
// BenchmarkFrame76x18 and BenchmarkFrame160x48 draw the same decimated
// series with this package and with ntcharts v2.2.0's braille time-series
// chart (github.com/NimbleMarkets/ntcharts/v2). On a shared 2-core
// machine, medians of three interleaved runs: one 76×18 chart of three
// series 0.11 ms here against 7.2 ms for ntcharts (1.47 MB and 6,569
// allocations per frame, 9,974 bytes of output against 3,510); a 160×48
// screen of two charts joined by Lip Gloss 0.71 ms against 19 ms. ntcharts
// styles every cell and rebuilds its braille grid per frame, which alone
// exceeds a 60 Hz frame budget at 160×48. So every chart that redraws
// while data arrives (Train, Runs) uses this package; ntcharts stays fit
// only for charts drawn once and cached.

package trainer

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// A freeze-depth sweep trains the first stage of a plan at every freeze
// point (see [Job.SweepPoint]), over the same seeds, and picks the point
// with the one-standard-error rule ([PickPoint]). The engine records it,
// thaw sweep prints it and the workbench draws it: all from the rows below,
// so that they show one table and one pick.

// SweepRow is one freeze point's results over a sweep's seeds.
type SweepRow struct {
	// Point is the freeze point: the lowest block the point trains.
	Point string
	// Trainable is the number of parameters the point trains.
	Trainable int
	// ValLoss and ValAcc hold one value per seed, in the sweep's order of
	// seeds, the same for every row: the lowest validation loss of that
	// seed's run and the validation accuracy at that checkpoint (its best
	// val acc). NaN marks a seed without a result (yet).
	ValLoss, ValAcc []float64
	// CPUSeconds is the CPU time the point's runs took, in all.
	CPUSeconds float64
}

// SweepStats sums a row up over its seeds with a result.
type SweepStats struct {
	// Seeds counts the seeds with a finite validation loss.
	Seeds int
	// LossMean and LossSD are the mean and the sample standard deviation
	// (n−1) of the lowest validation losses; AccMean and AccSD those of the
	// accuracies there. An SD is NaN below two seeds, a mean below one.
	LossMean, LossSD, AccMean, AccSD float64
}

// Stats returns r summed up over the seeds with a finite validation loss.
func (r SweepRow) Stats() SweepStats {
	var loss, acc []float64
	for i, l := range r.ValLoss {
		if finite(l) {
			loss = append(loss, l)
			if i < len(r.ValAcc) {
				acc = append(acc, r.ValAcc[i])
			}
		}
	}
	s := SweepStats{Seeds: len(loss)}
	s.LossMean, s.LossSD = meanSD(loss)
	s.AccMean, s.AccSD = meanSD(acc)
	return s
}

// meanSD is stat.MeanStdDev with NaN for what too few values cannot give.
func meanSD(x []float64) (mean, sd float64) {
	switch len(x) {
	case 0:
		return math.NaN(), math.NaN()
	case 1:
		return x[0], math.NaN()
	}
	return stat.MeanStdDev(x, nil)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// SweepPick is the freeze point a sweep picks, and why.
type SweepPick struct {
	// Index is the row picked, -1 when no row has a result. Lowest is the
	// row with the lowest mean validation loss; Index differs from it when
	// the one-standard-error rule preferred a point with fewer trainable
	// parameters.
	Index, Lowest int
	// Within lists, in row order, the rows whose validation loss is within
	// one standard error of Lowest's, Lowest included.
	Within []int
	// Diff is the picked row's mean per-seed difference in validation loss
	// from Lowest's (its loss minus Lowest's, seed by seed), SE the
	// standard error of those differences; both 0 when Index is Lowest.
	Diff, SE float64
	// Clear reports that the seeds single the pick out: Lowest has two
	// seeds or more and no other row is within one standard error of it.
	Clear bool
	// Note says in a sentence what was picked and why.
	Note string
}

// PickPoint picks a sweep's freeze point by the one-standard-error rule
// (Hastie, Tibshirani & Friedman, The Elements of Statistical Learning,
// §7.10: the simplest model within one standard error of the best): the
// row with the lowest mean validation loss, unless other rows are within
// one standard error of it, in which case the one with the fewest
// trainable parameters among them (ties to the lower mean loss, then to
// the earlier row). Every row sees the same seeds, so the standard error
// is that of the per-seed paired differences from the lowest row (the
// sample standard deviation of the differences over √n): a row is within
// it when its mean difference is at most one standard error. Seeds where
// either row has no finite loss are left out of the pair; a row with
// fewer than two such seeds is never within (no standard error).
//
// rows is not changed. A row without any finite loss is never picked; when
// no row has one the pick's Index and Lowest are -1.
func PickPoint(rows []SweepRow) SweepPick {
	pk := SweepPick{Index: -1, Lowest: -1}
	stats := make([]SweepStats, len(rows))
	for i, r := range rows {
		stats[i] = r.Stats()
		if stats[i].Seeds == 0 {
			continue
		}
		if pk.Lowest < 0 || stats[i].LossMean < stats[pk.Lowest].LossMean {
			pk.Lowest = i
		}
	}
	if pk.Lowest < 0 {
		pk.Note = "no freeze point has a result yet"
		return pk
	}
	low := pk.Lowest
	pk.Index = low
	diffs := make([]float64, len(rows))
	ses := make([]float64, len(rows))
	for i := range rows {
		if i == low {
			pk.Within = append(pk.Within, i)
			continue
		}
		d, se, ok := pairedDiff(rows[i].ValLoss, rows[low].ValLoss)
		if !ok || !(d <= se) {
			continue
		}
		diffs[i], ses[i] = d, se
		pk.Within = append(pk.Within, i)
		p := pk.Index
		if rows[i].Trainable < rows[p].Trainable ||
			(rows[i].Trainable == rows[p].Trainable && stats[i].LossMean < stats[p].LossMean) {
			pk.Index = i
		}
	}
	pk.Clear = len(pk.Within) == 1 && stats[low].Seeds >= 2
	pk.Diff, pk.SE = diffs[pk.Index], ses[pk.Index]
	pk.Note = pickNote(rows, stats, pk)
	return pk
}

// pairedDiff returns the mean of a−b over the seeds where both are finite
// and the standard error of those differences; ok is false below two.
func pairedDiff(a, b []float64) (mean, se float64, ok bool) {
	var d []float64
	for s := range min(len(a), len(b)) {
		if finite(a[s]) && finite(b[s]) {
			d = append(d, a[s]-b[s])
		}
	}
	if len(d) < 2 {
		return 0, 0, false
	}
	m, sd := stat.MeanStdDev(d, nil)
	return m, stat.StdErr(sd, float64(len(d))), true
}

// pickNote says what pk picked and why.
func pickNote(rows []SweepRow, stats []SweepStats, pk SweepPick) string {
	low, p := rows[pk.Lowest], rows[pk.Index]
	ls := stats[pk.Lowest]
	var b strings.Builder
	if pk.Index == pk.Lowest {
		fmt.Fprintf(&b, "%s: the lowest mean validation loss (%.4f over %s)", low.Point, ls.LossMean, SeedCount(ls.Seeds))
		var others []string
		for _, i := range pk.Within {
			if i != pk.Lowest {
				others = append(others, rows[i].Point)
			}
		}
		switch {
		case len(others) > 0:
			fmt.Fprintf(&b, "; %s within one standard error, but training no fewer parameters: not a clear pick", strings.Join(others, ", "))
		case ls.Seeds < 2:
			b.WriteString("; one seed gives no standard error: not a clear pick")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s: within one standard error of %s's lowest mean validation loss (%+.4f ± %.4f, paired over the seeds) and training fewer parameters (%d against %d): the one-standard-error rule",
		p.Point, low.Point, pk.Diff, pk.SE, p.Trainable, low.Trainable)
	return b.String()
}

// SeedCount says n seeds: "1 seed", "3 seeds".
func SeedCount(n int) string {
	if n == 1 {
		return "1 seed"
	}
	return fmt.Sprintf("%d seeds", n)
}

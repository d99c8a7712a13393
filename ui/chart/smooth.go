package chart

import "math"

// EMA is TensorBoard's debiased exponential moving average computed one
// value at a time, so a live series is smoothed as it arrives instead of
// all over again per frame. Fed a whole series it gives what
// export.Smooth gives (tested), which the PNG export draws, so the
// screen and the figure show the same curve. The zero EMA has weight 0
// and passes values through.
type EMA struct {
	W        float64
	last     float64
	debias   float64
	first    float64
	n        int
	constant bool
}

// NewEMA returns an EMA with weight w in [0, 1).
func NewEMA(w float64) EMA { return EMA{W: w} }

// Next folds v in and returns the smoothed value at v. Non-finite values
// are passed through without entering the average. While every value so
// far is the same, that value is returned as it is (export.Smooth returns
// a constant series unchanged, tensorboard#786).
func (e *EMA) Next(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	if e.n == 0 {
		e.debias, e.first, e.constant = 1, v, true
	}
	e.n++
	if v != e.first {
		e.constant = false
	}
	e.last = e.last*e.W + (1-e.W)*v
	e.debias *= e.W
	if e.constant || e.W == 0 {
		return v
	}
	return e.last / (1 - e.debias)
}

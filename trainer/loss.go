package trainer

import (
	"fmt"
	"math"
)

// CrossEntropy is softmax cross-entropy with mean reduction over the batch,
// as torch.nn.CrossEntropyLoss. With Smoothing ε > 0 the target is
// (1-ε)·onehot + ε/K (Szegedy et al. 2016, "Rethinking the Inception
// Architecture", §7; PyTorch's label_smoothing).
type CrossEntropy[T Float] struct {
	Smoothing float64

	dlogits *Tensor[T]
	prob    []float64
}

// Forward returns the mean loss of logits [N, K] against labels (each in
// [0, K)) and keeps what Backward needs. It panics if the shapes disagree or
// a label is out of range, which is a programmer error: datasets validate
// labels when they load.
func (c *CrossEntropy[T]) Forward(logits *Tensor[T], labels []int) float64 {
	n, k := logits.Shape[0], logits.Len()/max(logits.Shape[0], 1)
	if len(labels) != n {
		panic(fmt.Sprintf("trainer: cross-entropy: %d labels for %d rows", len(labels), n))
	}
	d := ensure(&c.dlogits, n, k)
	if cap(c.prob) < k {
		c.prob = make([]float64, k)
	}
	p := c.prob[:k]
	eps := c.Smoothing
	var total float64
	for i := 0; i < n; i++ {
		row := logits.Data[i*k : (i+1)*k]
		y := labels[i]
		if y < 0 || y >= k {
			panic(fmt.Sprintf("trainer: cross-entropy: label %d out of range [0,%d)", y, k))
		}
		// log-softmax with the max subtracted, in float64 for stability.
		_, m, z := expShifted(p, row)
		logZ := math.Log(z) + m
		var loss float64
		for j, v := range row {
			logp := float64(v) - logZ
			t := eps / float64(k)
			if j == y {
				t += 1 - eps
			}
			loss -= t * logp
			d.Data[i*k+j] = T((p[j]/z - t) / float64(n))
		}
		total += loss
	}
	return total / float64(n)
}

// Backward returns ∂loss/∂logits for the last Forward.
func (c *CrossEntropy[T]) Backward() *Tensor[T] { return c.dlogits }

// Softmax writes the softmax of logits into dst, which must be as long, and
// returns the index of the largest logit (the first of equal ones). It
// computes in float64 with the largest logit subtracted first, as
// CrossEntropy does, so the probabilities are those the loss was measured
// on.
func Softmax[T Float](dst []float64, logits []T) int {
	best, _, z := expShifted(dst[:len(logits)], logits)
	for i := range logits {
		dst[i] /= z
	}
	return best
}

// expShifted writes exp(v - max) of every v of row into p and returns the
// index of the largest value, that value and the sum of p: the shared part
// of a softmax. A NaN in row makes the sum NaN.
func expShifted[T Float](p []float64, row []T) (best int, top, sum float64) {
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	top = float64(row[best])
	for j, v := range row {
		p[j] = math.Exp(float64(v) - top)
		sum += p[j]
	}
	return best, top, sum
}

package export

import (
	"math"
	"math/rand/v2"

	"thaw/trainer"
)

// synthRun returns a run with realistic curves: training loss decaying
// exponentially with multiplicative noise and a drop at each stage
// boundary, validation loss and accuracy every evalEvery steps with a late
// upturn of overfitting, source-task accuracy falling as blocks unfreeze,
// and per-block drift that grows once a block trains.
func synthRun(seed uint64, id string, steps, evalEvery int, stages []Stage) Run {
	rng := rand.New(rand.NewPCG(seed, 0x7a11))
	const stepsPerEpoch = 500
	r := Run{ID: id, Name: id, Stages: stages, BestStep: -1}
	stageOf := func(step int) int {
		k := 0
		for i, s := range stages {
			if step >= s.StartStep {
				k = i
			}
		}
		return k
	}
	tau := float64(steps) / 5
	var train, val, acc, src, lr Series
	train.Name, val.Name, acc.Name, src.Name, lr.Name = TrainLoss, ValLoss, ValAcc, SourceAcc, trainer.MetricLR
	blocks := []string{"conv1", "conv2", "conv3", "head"}
	drift := make([]Series, len(blocks))
	for i, b := range blocks {
		drift[i].Name = DriftSeries(b)
	}
	best := math.Inf(1)
	for step := 0; step < steps; step++ {
		k := float64(stageOf(step))
		epoch := float64(step) / stepsPerEpoch
		base := 0.12 + 2.1*math.Exp(-float64(step)/tau)*math.Pow(0.8, k)
		loss := base * math.Exp(0.18*rng.NormFloat64())
		train.Points = append(train.Points, Point{Step: step, Epoch: epoch, Value: loss})
		lr.Points = append(lr.Points, Point{Step: step, Epoch: epoch, Value: stlr(stages, step)})
		if step%evalEvery != 0 && step != steps-1 {
			continue
		}
		over := 0.25 * math.Max(0, float64(step)/float64(steps)-0.7)
		v := base + 0.1 + over + 0.01*rng.NormFloat64()
		val.Points = append(val.Points, Point{Step: step, Epoch: epoch, Value: v})
		if v < best {
			best, r.BestStep = v, step
		}
		a := 0.93 - 0.83*math.Exp(-float64(step)/(0.8*tau)) - over/2 + 0.006*rng.NormFloat64()
		acc.Points = append(acc.Points, Point{Step: step, Epoch: epoch, Value: a})
		s := 0.71 - 0.04*k*k - 0.05*float64(step)/float64(steps) + 0.004*rng.NormFloat64()
		src.Points = append(src.Points, Point{Step: step, Epoch: epoch, Value: s})
		for i, b := range blocks {
			d := 0.0
			if from, ok := trainableFrom(stages, b); ok && step > from {
				scale := 0.02 * float64(i+1)
				if b == "head" {
					scale = 0.3
				}
				d = scale * math.Sqrt(float64(step-from)/float64(evalEvery)) * (1 + 0.03*rng.NormFloat64())
			}
			drift[i].Points = append(drift[i].Points, Point{Step: step, Epoch: epoch, Value: d})
		}
	}
	r.Series = append([]Series{train, val, acc, src}, drift...)
	r.Series = append(r.Series, lr)
	return r
}

// stlr is ULMFiT's slanted triangular learning rate within each stage
// (Howard and Ruder 2018, eq. 3: cut_frac 0.1, ratio 32), peaking at 1e-3
// and halved for each later stage.
func stlr(stages []Stage, step int) float64 {
	for i, s := range stages {
		if step < s.StartStep || step >= s.EndStep {
			continue
		}
		t, n := float64(step-s.StartStep), float64(s.EndStep-s.StartStep)
		cut := math.Floor(0.1 * n)
		p := 1 - (t-cut)/(n-cut)
		if t < cut {
			p = t / cut
		}
		return 1e-3 * math.Pow(0.5, float64(i)) * (1 + p*31) / 32
	}
	return 0
}

// trainableFrom returns the first step at which block trains.
func trainableFrom(stages []Stage, block string) (int, bool) {
	for _, s := range stages {
		for _, b := range s.Trainable {
			if b == block {
				return s.StartStep, true
			}
		}
	}
	return 0, false
}

// gradualStages is ULMFiT-style gradual unfreezing over steps: the head,
// then one more block per stage.
func gradualStages(steps int) []Stage {
	a, b := steps/4, steps/2
	return []Stage{
		{Index: 1, Label: "stage 1: head", StartStep: 0, EndStep: a, Trainable: []string{"head"}},
		{Index: 2, Label: "stage 2: +conv3", StartStep: a, EndStep: b, Trainable: []string{"head", "conv3"}},
		{Index: 3, Label: "stage 3: +conv2", StartStep: b, EndStep: steps, Trainable: []string{"head", "conv3", "conv2"}},
	}
}

// overlayRuns returns three runs: gradual unfreezing, full fine-tuning, and
// a branch of the first from its stage-3 boundary with a different last
// stage.
func overlayRuns(steps, evalEvery int) []Run {
	a := synthRun(1, "gradual", steps, evalEvery, gradualStages(steps))
	full := synthRun(2, "full", steps, evalEvery, []Stage{
		{Index: 1, Label: "stage 1: all", StartStep: 0, EndStep: steps, Trainable: []string{"conv1", "conv2", "conv3", "head"}},
	})
	st := gradualStages(steps)
	st[2].Label = "stage 3: +all, lr×0.1"
	st[2].Trainable = []string{"head", "conv3", "conv2", "conv1"}
	br := synthRun(3, "gradual-lowlr", steps, evalEvery, st)
	br.BranchStep = st[2].StartStep
	br.Parent = "gradual"
	return []Run{a, full, br}
}

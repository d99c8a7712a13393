package trainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Schedule kinds. Each names a learning-rate curve over one stage; see
// [Schedule.LR] for the formulas and their sources.
const (
	ScheduleConstant          = "constant"
	ScheduleWarmup            = "warmup"
	ScheduleCosine            = "cosine"
	ScheduleOneCycle          = "one-cycle"
	ScheduleSlantedTriangular = "slanted-triangular"
)

// ScheduleKinds lists the schedule kinds in the order the UI offers them.
func ScheduleKinds() []string {
	return []string{ScheduleConstant, ScheduleWarmup, ScheduleCosine, ScheduleOneCycle, ScheduleSlantedTriangular}
}

// Schedule is a learning-rate curve over one stage: the learning rate as a
// pure function of the step, the stage's length and its peak.
//
// Kind selects the curve; the other fields are its parameters. A zero
// parameter takes the kind's default, noted on each field, and a parameter
// that does not apply to Kind is an error in [Schedule.Validate]. The zero
// Schedule is a constant learning rate.
//
// In JSON a schedule is either its kind alone, "cosine", or an object with
// snake_case keys, {"kind": "cosine", "warmup_frac": 0.1, "floor_frac": 0.01}.
type Schedule struct {
	// Kind is one of constant, warmup, cosine, one-cycle and
	// slanted-triangular. Empty means constant.
	Kind string `json:"kind"`

	// WarmupSteps and WarmupFrac give the length of the linear warm-up of
	// warmup and cosine, in steps or as a fraction of the stage; at most one
	// may be set. The default is no warm-up for cosine and a tenth of the
	// stage for warmup.
	WarmupSteps int     `json:"warmup_steps,omitempty"`
	WarmupFrac  float64 `json:"warmup_frac,omitempty"`

	// FloorFrac is where cosine ends, as a fraction of the peak, in [0, 1).
	// The default 0 anneals to zero.
	FloorFrac float64 `json:"floor_frac,omitempty"`

	// PctStart, Div and DivFinal shape one-cycle (fastai's names): the
	// learning rate rises from peak/Div to peak over the first PctStart of
	// the stage, then falls to peak/DivFinal. Defaults are fastai's
	// fit_one_cycle: PctStart 0.25, Div 25, DivFinal 1e5.
	PctStart float64 `json:"pct_start,omitempty"`
	Div      float64 `json:"div,omitempty"`
	DivFinal float64 `json:"div_final,omitempty"`

	// CutFrac and Ratio shape slanted-triangular (ULMFiT's names): the
	// fraction of the stage spent rising, and how much smaller the lowest
	// learning rate is than the peak. Defaults are ULMFiT's: 0.1 and 32.
	CutFrac float64 `json:"cut_frac,omitempty"`
	Ratio   float64 `json:"ratio,omitempty"`
}

// Defaults of the schedule parameters; see the fields of [Schedule].
const (
	DefaultWarmupFrac = 0.1  // warmup: a tenth of the stage
	DefaultPctStart   = 0.25 // fastai fit_one_cycle
	DefaultDiv        = 25   // fastai fit_one_cycle
	DefaultDivFinal   = 1e5  // fastai fit_one_cycle
	DefaultCutFrac    = 0.1  // ULMFiT, Howard & Ruder 2018, §3.2
	DefaultRatio      = 32   // ULMFiT, Howard & Ruder 2018, §3.2
)

// LR returns the learning rate at step of a stage that is total steps long
// and peaks at peak. Steps count from 0; training uses steps 0 to total-1,
// and step total is the value the curve ends on. A step below 0 counts as 0
// and one beyond total as total; a total below 1 counts as 1. LR does not
// validate s: call [Schedule.Validate] first, as [Plan.Resolve] does.
//
// With t = step, T = total and η = peak:
//
// constant: η.
//
// warmup: a linear warm-up over W steps, η·(t+1)/W for t < W, then η, so
// that the first step already moves and step W-1 reaches the peak (Goyal et
// al. 2017, "Accurate, Large Minibatch SGD", §2.2, gradual warm-up).
//
// cosine: the same warm-up, then cosine annealing from η down to the floor
// φ = η·FloorFrac over the remaining T' = T-W steps,
// φ + (η-φ)·(1+cos(π·(t-W)/T'))/2 (Loshchilov & Hutter 2017, "SGDR", eq. 5,
// without restarts).
//
// one-cycle: fastai's fit_one_cycle, built from combined_cos: with
// p = t/T and s = PctStart, a cosine from η/Div up to η over p < s, then a
// cosine from η down to η/DivFinal (not η/Div/DivFinal). Each half is
// fastai's SchedCos(a, b)(x) = a + (1+cos(π·(1-x)))·(b-a)/2 with x the
// position within the half (Smith 2018, "A disciplined approach to neural
// network hyper-parameters", with fastai's cosine halves).
//
// slanted-triangular: ULMFiT's STLR (Howard & Ruder 2018, "Universal
// Language Model Fine-tuning for Text Classification", eq. 3): with
// cut = ⌊T·CutFrac⌋, p = t/cut for t < cut, else
// p = 1 - (t-cut)/(cut·(1/CutFrac-1)), and η_t = η·(1+p·(Ratio-1))/Ratio.
// Two guards keep short stages sensible where the paper assumes T is large:
// p never drops below 0 (the curve bottoms out at η/Ratio), and when
// T·CutFrac < 1 there is no rise and p = 1 - t/T.
func (s Schedule) LR(step, total int, peak float64) float64 {
	s = s.withDefaults()
	T := max(total, 1)
	t := min(max(step, 0), T)
	switch s.Kind {
	case ScheduleWarmup:
		if w := s.warmupSteps(T); t < w {
			return peak * float64(t+1) / float64(w)
		}
		return peak
	case ScheduleCosine:
		w := s.warmupSteps(T)
		if t < w {
			return peak * float64(t+1) / float64(w)
		}
		if T <= w {
			return peak
		}
		floor := peak * s.FloorFrac
		x := float64(t-w) / float64(T-w)
		return floor + (peak-floor)*(1+math.Cos(math.Pi*x))/2
	case ScheduleOneCycle:
		lo, end := peak/s.Div, peak/s.DivFinal
		p := float64(t) / float64(T)
		if p < s.PctStart {
			return schedCos(lo, peak, p/s.PctStart)
		}
		if s.PctStart >= 1 {
			// Only at p = 1: the whole stage was the rise.
			return peak
		}
		return schedCos(peak, end, (p-s.PctStart)/(1-s.PctStart))
	case ScheduleSlantedTriangular:
		cut := int(math.Floor(float64(T) * s.CutFrac))
		var p float64
		switch {
		case cut < 1:
			p = 1 - float64(t)/float64(T)
		case t < cut:
			p = float64(t) / float64(cut)
		default:
			p = 1 - float64(t-cut)/(float64(cut)*(1/s.CutFrac-1))
		}
		p = max(p, 0)
		return peak * (1 + p*(s.Ratio-1)) / s.Ratio
	}
	return peak
}

// schedCos is fastai's SchedCos: a half cosine from start at pos 0 to end at
// pos 1.
func schedCos(start, end, pos float64) float64 {
	return start + (1+math.Cos(math.Pi*(1-pos)))*(end-start)/2
}

// warmupSteps returns the warm-up length in steps for a stage of T steps,
// at most T.
func (s Schedule) warmupSteps(T int) int {
	w := s.WarmupSteps
	if s.WarmupFrac > 0 {
		w = int(math.Round(s.WarmupFrac * float64(T)))
	}
	return min(max(w, 0), T)
}

// withDefaults returns s with Kind and every zero parameter of that kind
// set to its default.
func (s Schedule) withDefaults() Schedule {
	if s.Kind == "" {
		s.Kind = ScheduleConstant
	}
	switch s.Kind {
	case ScheduleWarmup:
		if s.WarmupSteps == 0 && s.WarmupFrac == 0 {
			s.WarmupFrac = DefaultWarmupFrac
		}
	case ScheduleOneCycle:
		if s.PctStart == 0 {
			s.PctStart = DefaultPctStart
		}
		if s.Div == 0 {
			s.Div = DefaultDiv
		}
		if s.DivFinal == 0 {
			s.DivFinal = DefaultDivFinal
		}
	case ScheduleSlantedTriangular:
		if s.CutFrac == 0 {
			s.CutFrac = DefaultCutFrac
		}
		if s.Ratio == 0 {
			s.Ratio = DefaultRatio
		}
	}
	return s
}

// Validate reports an unknown kind, a parameter out of range, or a
// parameter that does not apply to the kind (most likely a typo for
// another kind's).
func (s Schedule) Validate() error {
	kind := s.Kind
	if kind == "" {
		kind = ScheduleConstant
	}
	if !slices.Contains(ScheduleKinds(), kind) {
		return fmt.Errorf("unknown schedule %q (schedules: %s)", s.Kind, quoteList(ScheduleKinds()))
	}
	warm := kind == ScheduleWarmup || kind == ScheduleCosine
	params := []struct {
		name  string
		set   bool
		fits  bool
		valid bool
		want  string
	}{
		{"warmup_steps", s.WarmupSteps != 0, warm, s.WarmupSteps >= 0, "at least 0"},
		{"warmup_frac", s.WarmupFrac != 0, warm, s.WarmupFrac >= 0 && s.WarmupFrac < 1, "in [0, 1)"},
		{"floor_frac", s.FloorFrac != 0, kind == ScheduleCosine, s.FloorFrac >= 0 && s.FloorFrac < 1, "in [0, 1)"},
		{"pct_start", s.PctStart != 0, kind == ScheduleOneCycle, s.PctStart >= 0 && s.PctStart <= 1, "in [0, 1]"},
		{"div", s.Div != 0, kind == ScheduleOneCycle, s.Div > 0, "positive"},
		{"div_final", s.DivFinal != 0, kind == ScheduleOneCycle, s.DivFinal > 0, "positive"},
		{"cut_frac", s.CutFrac != 0, kind == ScheduleSlantedTriangular, s.CutFrac > 0 && s.CutFrac < 1, "in (0, 1)"},
		{"ratio", s.Ratio != 0, kind == ScheduleSlantedTriangular, s.Ratio >= 1, "at least 1"},
	}
	for _, p := range params {
		if !p.set {
			continue
		}
		if !p.fits {
			return fmt.Errorf("schedule %s has no parameter %s", kind, p.name)
		}
		if !p.valid {
			return fmt.Errorf("schedule %s: %s must be %s", kind, p.name, p.want)
		}
	}
	if s.WarmupSteps != 0 && s.WarmupFrac != 0 {
		return fmt.Errorf("schedule %s: set warmup_steps or warmup_frac, not both", kind)
	}
	return nil
}

// UnmarshalJSON accepts a schedule as its kind alone ("cosine") or as an
// object; unknown keys in the object are an error.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var kind string
		if err := json.Unmarshal(b, &kind); err != nil {
			return err
		}
		*s = Schedule{Kind: kind}
		return nil
	}
	// A named type without methods, so decoding does not recurse.
	type plain Schedule
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return fmt.Errorf("schedule: %s: cannot use %s as %s", ute.Field, ute.Value, ute.Type)
		}
		return fmt.Errorf("schedule: %w", err)
	}
	*s = Schedule(p)
	return nil
}

// MarshalJSON writes a schedule without parameters as its kind alone, the
// short form people write by hand.
func (s Schedule) MarshalJSON() ([]byte, error) {
	type plain Schedule
	if (s == Schedule{Kind: s.Kind}) {
		return json.Marshal(s.Kind)
	}
	return json.Marshal(plain(s))
}

// quoteList formats names as "a", "b", "c" for error messages.
func quoteList(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}

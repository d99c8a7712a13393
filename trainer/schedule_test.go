package trainer

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestScheduleLR checks each schedule against values worked out by hand
// from its published formula (see Schedule.LR). The tolerance is 1e-12 of
// the peak: every formula scales the peak, and a cosine plus the
// cancellation in η + (φ-η) cost a few ulps of it, far less than that.
func TestScheduleLR(t *testing.T) {
	const tol = 1e-12
	cos45 := (1 + math.Sqrt2/2) / 2 // (1+cos(π/4))/2
	tests := []struct {
		name  string
		s     Schedule
		step  int
		total int
		peak  float64
		want  float64
	}{
		{"zero value is constant", Schedule{}, 7, 10, 0.3, 0.3},
		{"constant end", Schedule{Kind: ScheduleConstant}, 10, 10, 0.3, 0.3},

		// Linear warm-up: η·(t+1)/W for t < W.
		{"warmup first step", Schedule{Kind: ScheduleWarmup, WarmupSteps: 4}, 0, 10, 1, 0.25},
		{"warmup reaches peak at W-1", Schedule{Kind: ScheduleWarmup, WarmupSteps: 4}, 3, 10, 1, 1},
		{"warmup then constant", Schedule{Kind: ScheduleWarmup, WarmupSteps: 4}, 8, 10, 1, 1},
		{"warmup default tenth, first", Schedule{Kind: ScheduleWarmup}, 0, 100, 1, 0.1},
		{"warmup default tenth, middle", Schedule{Kind: ScheduleWarmup}, 4, 100, 1, 0.5},
		{"warmup frac rounds", Schedule{Kind: ScheduleWarmup, WarmupFrac: 0.25}, 1, 10, 1, 2.0 / 3}, // W = round(2.5) = 3

		// SGDR eq. 5: φ + (η-φ)(1+cos(π t/T))/2.
		{"cosine start", Schedule{Kind: ScheduleCosine}, 0, 100, 1, 1},
		{"cosine quarter", Schedule{Kind: ScheduleCosine}, 25, 100, 1, cos45},
		{"cosine middle", Schedule{Kind: ScheduleCosine}, 50, 100, 1, 0.5},
		{"cosine end", Schedule{Kind: ScheduleCosine}, 100, 100, 1, 0},
		{"cosine floor middle", Schedule{Kind: ScheduleCosine, FloorFrac: 0.1}, 50, 100, 2, 0.2 + 1.8*0.5},
		{"cosine floor end", Schedule{Kind: ScheduleCosine, FloorFrac: 0.1}, 100, 100, 2, 0.2},
		{"cosine warm-up first", Schedule{Kind: ScheduleCosine, WarmupSteps: 10}, 0, 110, 1, 0.1},
		{"cosine warm-up peak", Schedule{Kind: ScheduleCosine, WarmupSteps: 10}, 10, 110, 1, 1},
		{"cosine after warm-up middle", Schedule{Kind: ScheduleCosine, WarmupSteps: 10}, 60, 110, 1, 0.5},
		{"cosine after warm-up end", Schedule{Kind: ScheduleCosine, WarmupSteps: 10}, 110, 110, 1, 0},

		// fastai combined_cos(0.25, η/25, η, η/1e5).
		{"one-cycle start is peak/div", Schedule{Kind: ScheduleOneCycle}, 0, 100, 1, 0.04},
		{"one-cycle halfway up", Schedule{Kind: ScheduleOneCycle}, 25, 200, 1, 0.04 + 0.96/2},
		{"one-cycle peak at pct_start", Schedule{Kind: ScheduleOneCycle}, 25, 100, 1, 1},
		{"one-cycle halfway down", Schedule{Kind: ScheduleOneCycle}, 125, 200, 1, 1 + (1e-5-1)/2},
		{"one-cycle end is peak/div_final", Schedule{Kind: ScheduleOneCycle}, 100, 100, 1, 1e-5},
		{"one-cycle fine_tune freeze stage", Schedule{Kind: ScheduleOneCycle, PctStart: 0.99}, 99, 100, 2e-3, 2e-3},
		{"one-cycle div 5 start", Schedule{Kind: ScheduleOneCycle, PctStart: 0.3, Div: 5}, 0, 10, 1e-3, 2e-4},

		// ULMFiT eq. 3, T = 1000, cut = 100: η(1+p·31)/32.
		{"stlr start", Schedule{Kind: ScheduleSlantedTriangular}, 0, 1000, 0.01, 0.01 / 32},
		{"stlr halfway up", Schedule{Kind: ScheduleSlantedTriangular}, 50, 1000, 0.01, 0.01 * 16.5 / 32},
		{"stlr peak at cut", Schedule{Kind: ScheduleSlantedTriangular}, 100, 1000, 0.01, 0.01},
		{"stlr halfway down", Schedule{Kind: ScheduleSlantedTriangular}, 550, 1000, 0.01, 0.01 * 16.5 / 32},
		{"stlr end", Schedule{Kind: ScheduleSlantedTriangular}, 1000, 1000, 0.01, 0.01 / 32},
		{"stlr custom", Schedule{Kind: ScheduleSlantedTriangular, CutFrac: 0.5, Ratio: 2}, 1, 4, 1, 0.75}, // cut 2, p = 0.5
		{"stlr short stage no rise", Schedule{Kind: ScheduleSlantedTriangular}, 0, 5, 1, 1},
		{"stlr short stage end", Schedule{Kind: ScheduleSlantedTriangular}, 5, 5, 1, 1.0 / 32},
		{"stlr p clamped at 0", Schedule{Kind: ScheduleSlantedTriangular}, 19, 19, 1, 1.0 / 32}, // paper's p = -1

		// Out of range steps clamp.
		{"step beyond total", Schedule{Kind: ScheduleCosine}, 250, 100, 1, 0},
		{"negative step", Schedule{Kind: ScheduleOneCycle}, -5, 100, 1, 0.04},
		{"total 0 counts as 1", Schedule{Kind: ScheduleCosine}, 0, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.s.LR(tt.step, tt.total, tt.peak)
			if math.Abs(got-tt.want) > tol*tt.peak {
				t.Errorf("LR(%d, %d, %g) = %.17g, want %.17g", tt.step, tt.total, tt.peak, got, tt.want)
			}
		})
	}
}

// TestScheduleProperties checks every kind, with defaults and with
// parameters, over a range of stage lengths including the degenerate ones.
func TestScheduleProperties(t *testing.T) {
	schedules := []Schedule{
		{}, {Kind: ScheduleWarmup}, {Kind: ScheduleWarmup, WarmupSteps: 50},
		{Kind: ScheduleCosine}, {Kind: ScheduleCosine, WarmupFrac: 0.5, FloorFrac: 0.2}, {Kind: ScheduleCosine, WarmupSteps: 200},
		{Kind: ScheduleOneCycle}, {Kind: ScheduleOneCycle, PctStart: 0.99}, {Kind: ScheduleOneCycle, PctStart: 1, Div: 5},
		{Kind: ScheduleSlantedTriangular}, {Kind: ScheduleSlantedTriangular, CutFrac: 0.5, Ratio: 1},
	}
	const peak = 0.02
	for _, s := range schedules {
		if err := s.Validate(); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		for _, total := range []int{1, 2, 3, 7, 100, 1000} {
			hi := 0.0
			for step := 0; step <= total; step++ {
				lr := s.LR(step, total, peak)
				if math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 || lr > peak*(1+1e-15) {
					t.Fatalf("%+v: LR(%d, %d) = %v, want finite in [0, %v]", s, step, total, lr, peak)
				}
				hi = max(hi, lr)
			}
			// Long stages, whose phase boundaries fall on whole steps, reach
			// the peak. Short one-cycle stages sample the rise too coarsely
			// to hit it (one step is at peak/div), exactly as in fastai.
			if total >= 100 && hi < peak*(1-1e-15) {
				t.Errorf("%+v, total %d: highest LR %v, want the peak %v", s, total, hi, peak)
			}
			if a, b := s.LR(total+3, total, peak), s.LR(total, total, peak); a != b {
				t.Errorf("%+v, total %d: LR past the end %v, want %v (clamped)", s, total, a, b)
			}
			if a, b := s.LR(-1, total, peak), s.LR(0, total, peak); a != b {
				t.Errorf("%+v, total %d: LR(-1) %v, want %v (clamped)", s, total, a, b)
			}
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	tests := []struct {
		s       Schedule
		wantErr string // "" for valid
	}{
		{Schedule{}, ""},
		{Schedule{Kind: ScheduleCosine, WarmupFrac: 0.1, FloorFrac: 0.05}, ""},
		{Schedule{Kind: ScheduleOneCycle, PctStart: 1}, ""},
		{Schedule{Kind: "linear"}, `unknown schedule "linear" (schedules: "constant", "warmup"`},
		{Schedule{Kind: ScheduleCosine, PctStart: 0.3}, "schedule cosine has no parameter pct_start"},
		{Schedule{Kind: ScheduleConstant, WarmupSteps: 3}, "schedule constant has no parameter warmup_steps"},
		{Schedule{Kind: ScheduleWarmup, WarmupSteps: 3, WarmupFrac: 0.1}, "not both"},
		{Schedule{Kind: ScheduleWarmup, WarmupFrac: 1}, "warmup_frac must be in [0, 1)"},
		{Schedule{Kind: ScheduleOneCycle, Div: -1}, "div must be positive"},
		{Schedule{Kind: ScheduleSlantedTriangular, CutFrac: 1}, "cut_frac must be in (0, 1)"},
		{Schedule{Kind: ScheduleSlantedTriangular, Ratio: 0.5}, "ratio must be at least 1"},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tt.s, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%+v: error %v, want one containing %q", tt.s, err, tt.wantErr)
		}
	}
}

func TestScheduleJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Schedule
		out  string
	}{
		{`"cosine"`, Schedule{Kind: ScheduleCosine}, `"cosine"`},
		{`{"kind": "one-cycle"}`, Schedule{Kind: ScheduleOneCycle}, `"one-cycle"`},
		{`{"kind": "one-cycle", "pct_start": 0.3, "div": 5}`, Schedule{Kind: ScheduleOneCycle, PctStart: 0.3, Div: 5}, `{"kind":"one-cycle","pct_start":0.3,"div":5}`},
	}
	for _, tt := range tests {
		var got Schedule
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.in, got, tt.want)
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.out {
			t.Errorf("marshal %+v: got %s, want %s", got, b, tt.out)
		}
	}
	var s Schedule
	err := json.Unmarshal([]byte(`{"kind": "cosine", "warmup": 3}`), &s)
	if err == nil || !strings.Contains(err.Error(), `unknown field "warmup"`) {
		t.Errorf("unknown key: error %v, want one naming it", err)
	}
}

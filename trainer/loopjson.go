package trainer

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Checkpoints carry the loop state as JSON, and it holds NaN ("not measured
// yet") and +Inf ("no best loss yet"), which encoding/json refuses. These
// encoders write such values as the strings "NaN", "+Inf" and "-Inf".

// jsonFloat is a float64 that survives a JSON round trip whatever its value.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = jsonFloat(math.NaN())
		return nil
	case `"+Inf"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*f = jsonFloat(v)
	return nil
}

type stageResultJSON struct {
	Label        string    `json:"label"`
	Trainable    []string  `json:"trainable"`
	StartStep    int       `json:"start_step"`
	EndStep      int       `json:"end_step"`
	BestValLoss  jsonFloat `json:"best_val_loss"`
	BestValAcc   jsonFloat `json:"best_val_acc"`
	StoppedEarly bool      `json:"stopped_early,omitempty"`
	Skipped      bool      `json:"skipped,omitempty"`
}

// MarshalJSON writes s with snake_case keys and non-finite numbers as
// strings.
func (s StageResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(stageResultJSON{s.Label, s.Trainable, s.StartStep, s.EndStep,
		jsonFloat(s.BestValLoss), jsonFloat(s.BestValAcc), s.StoppedEarly, s.Skipped})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *StageResult) UnmarshalJSON(b []byte) error {
	var j stageResultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = StageResult{j.Label, j.Trainable, j.StartStep, j.EndStep,
		float64(j.BestValLoss), float64(j.BestValAcc), j.StoppedEarly, j.Skipped}
	return nil
}

type loopStateJSON struct {
	Step            int           `json:"step"`
	BestStep        int           `json:"best_step"`
	BestValLoss     jsonFloat     `json:"best_val_loss"`
	BestValAcc      jsonFloat     `json:"best_val_acc"`
	StageBestLoss   jsonFloat     `json:"stage_best_loss"`
	SinceBest       int           `json:"since_best"`
	Stages          []StageResult `json:"stages"`
	EverTrainable   []string      `json:"ever_trainable"`
	SourceAccBefore jsonFloat     `json:"source_acc_before"`
}

// MarshalJSON writes s with non-finite numbers as strings.
func (s LoopState) MarshalJSON() ([]byte, error) {
	return json.Marshal(loopStateJSON{s.Step, s.BestStep, jsonFloat(s.BestValLoss), jsonFloat(s.BestValAcc),
		jsonFloat(s.StageBestLoss), s.SinceBest, s.Stages, s.EverTrainable, jsonFloat(s.SourceAccBefore)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *LoopState) UnmarshalJSON(b []byte) error {
	var j loopStateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = LoopState{j.Step, j.BestStep, float64(j.BestValLoss), float64(j.BestValAcc),
		float64(j.StageBestLoss), j.SinceBest, j.Stages, j.EverTrainable, float64(j.SourceAccBefore)}
	return nil
}

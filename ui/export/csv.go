package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

// CSVHeader is the header row CSV writes.
var CSVHeader = []string{"run", "step", "stage", "metric", "value"}

// CSV writes every point of every series of runs to w in long format, one
// row per point under CSVHeader: the run's ID (its name if the ID is empty),
// the step, the index of the stage holding the step (empty if none), the
// series name and the value. Values are written in the shortest form that
// parses back to the same float64 (strconv 'g', −1), so NaN and ±Inf
// appear as NaN, +Inf and -Inf. Fields are quoted as RFC 4180 requires.
// Nothing is dropped: unlike the figures, the CSV is the data.
func CSV(w io.Writer, runs []Run) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	row := make([]string, len(CSVHeader))
	for _, r := range runs {
		row[0] = r.ID
		if row[0] == "" {
			row[0] = r.Name
		}
		for _, s := range r.Series {
			row[3] = s.Name
			for _, p := range s.Points {
				row[1] = strconv.Itoa(p.Step)
				row[2] = ""
				if st := r.stageAt(p.Step); st != nil {
					row[2] = strconv.Itoa(st.Index)
				}
				row[4] = strconv.FormatFloat(p.Value, 'g', -1, 64)
				if err := cw.Write(row); err != nil {
					return fmt.Errorf("write csv: %w", err)
				}
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

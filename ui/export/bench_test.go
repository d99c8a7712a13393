package export

import (
	"io"
	"testing"
)

// BenchmarkOverlay3x100k renders three runs of 100,000 training steps each
// (with validation every 100 steps) to a default-sized PNG. The budget is
// one second per figure.
func BenchmarkOverlay3x100k(b *testing.B) {
	runs := overlayRuns(100_000, 100)
	o := DefaultOptions()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Curves(io.Discard, FormatPNG, runs, o); err != nil {
			b.Fatal(err)
		}
	}
}

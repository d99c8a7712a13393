package trainer

import "testing"

// TestParseBlockMetric: ParseBlockMetric reads back what BlockMetric
// names, and nothing else.
func TestParseBlockMetric(t *testing.T) {
	for _, c := range []struct {
		name, block, what string
		ok                bool
	}{
		{BlockMetric("conv1", BlockDrift), "conv1", BlockDrift, true},
		{BlockMetric("features/0", BlockGradNorm), "features/0", BlockGradNorm, true},
		{MetricTrainLoss, "", "", false},
		{"block/", "", "", false},
		{"block/conv1", "", "", false},
		{"block/conv1/", "", "", false},
		{"block//drift", "", "", false},
	} {
		block, what, ok := ParseBlockMetric(c.name)
		if block != c.block || what != c.what || ok != c.ok {
			t.Errorf("ParseBlockMetric(%q) = %q, %q, %v; want %q, %q, %v", c.name, block, what, ok, c.block, c.what, c.ok)
		}
	}
}

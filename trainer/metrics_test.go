package trainer

import "testing"

func TestParseBlockMetric(t *testing.T) {
	for _, c := range []struct {
		name, block, what string
		ok                bool
	}{
		{BlockMetric("fc1", BlockDrift), "fc1", BlockDrift, true},
		{BlockMetric("layer/1", BlockGradNorm), "layer/1", BlockGradNorm, true},
		{MetricTrainLoss, "", "", false},
		{"block/", "", "", false},
		{"block/fc1/", "", "", false},
		{"block//drift", "", "", false},
	} {
		block, what, ok := ParseBlockMetric(c.name)
		if block != c.block || what != c.what || ok != c.ok {
			t.Errorf("ParseBlockMetric(%q) = %q, %q, %v; want %q, %q, %v", c.name, block, what, ok, c.block, c.what, c.ok)
		}
	}
}

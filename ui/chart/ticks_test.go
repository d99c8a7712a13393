package chart

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// TestYTicks: the y labels are nice values, evenly spaced in the axis'
// space, with as many decimals as their step needs, so that no two read
// alike; a log axis labels decades where it spans two, 1-2-5 where it
// spans less.
func TestYTicks(t *testing.T) {
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	cases := []struct {
		name    string
		lo, hi  float64 // of the values
		rows    int
		logY    bool
		percent bool
		format  func(float64) string
		want    []string
	}{
		{"loss", 0.2, 2.4, 12, false, false, nil, []string{"0.5", "1.0", "1.5", "2.0"}},
		{"loss from zero", -0.1, 2.4, 12, false, false, nil, []string{"0.0", "0.5", "1.0", "1.5", "2.0"}},
		// 'g' with three digits wrote 2.3005 as 2.3, beside 2.3.
		{"a flat loss", 2.3001, 2.3009, 12, false, false, nil, []string{"2.3002", "2.3004", "2.3006", "2.3008"}},
		{"thousands", 11_800, 14_200, 12, false, false, nil, []string{"12.0k", "12.5k", "13.0k", "13.5k", "14.0k"}},
		{"tiny", 1.1e-5, 3.9e-5, 12, false, false, nil, []string{"1.5e-05", "2.0e-05", "2.5e-05", "3.0e-05", "3.5e-05"}},
		// "99%" on three rows before.
		{"accuracy near 99%", 0.9855, 0.9945, 12, false, true, nil, []string{"98.6%", "98.8%", "99.0%", "99.2%", "99.4%"}},
		{"accuracy", 0.12, 0.93, 12, false, true, nil, []string{"20%", "40%", "60%", "80%"}},
		// A format of the caller's thins out instead.
		{"a fixed format near 99%", 0.9855, 0.9945, 12, false, false, pct, []string{"99%"}},
		{"log, decades", 1e-4, 1.2, 15, true, false, nil, []string{"0.0001", "0.001", "0.01", "0.1", "1"}},
		{"log, decades thinned", 1e-6, 1.2, 9, true, false, nil, []string{"1e-06", "0.001", "1"}},
		{"log, under two decades", 0.15, 2.4, 12, true, false, nil, []string{"0.2", "0.5", "1", "2"}},
		{"log, a factor of 1.5", 0.30, 0.45, 12, true, false, nil, []string{"0.30", "0.35", "0.40", "0.45"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(60, tc.rows+3)
			c.YPercent, c.YFormat, c.logY = tc.percent, tc.format, tc.logY
			lo, hi := tc.lo, tc.hi
			if tc.logY {
				lo, hi = math.Log10(lo), math.Log10(hi)
			}
			ts, got := c.yTicks(lo, hi, tc.rows)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if repeats(got) {
				t.Errorf("labels repeat: %q", got)
			}
			// Evenly spaced in the axis' space, but for 1-2-5 on a log
			// axis and the linear ticks of a short log one.
			if !strings.HasPrefix(tc.name, "log, under") && !strings.HasPrefix(tc.name, "log, a factor") {
				for i := 2; i < len(ts); i++ {
					if d0, d1 := ts[i-1]-ts[i-2], ts[i]-ts[i-1]; math.Abs(d1-d0) > 1e-9*math.Abs(d0)+1e-12 {
						t.Errorf("ticks %v are not evenly spaced", ts)
						break
					}
				}
			}
		})
	}
}

// TestXAxis: x counts steps, so its ticks are whole; an x range with one
// value in it (an overlay of runs of one point each, at step 367) widens
// to a nice span of whole steps around it.
func TestXAxis(t *testing.T) {
	cases := []struct {
		name       string
		xs         []float64
		domain     []float64 // SetDomain's, when set
		fractional bool
		want       string // the x labels, spaces squeezed
	}{
		{"a lone point", []float64{367}, nil, false, "320 340 360 380 400"},
		{"a lone point at 0", []float64{0}, nil, false, "0 1 2"},
		{"an empty domain", []float64{367}, []float64{367, 367}, false, "320 340 360 380 400"},
		{"three steps", []float64{0, 1, 2, 3}, []float64{0, 3}, false, "0 1 2 3"},
		{"zoomed in thousands", []float64{12000, 12003}, []float64{12000, 12003}, false, "12.000k 12.001k 12.002k 12.003k"},
		{"fractional", []float64{-3, -2}, []float64{-3, -2}, true, "-3.0 -2.8 -2.6 -2.4 -2.2 -2.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(60, 8)
			c.XFractional = tc.fractional
			if tc.domain != nil {
				c.SetDomain(tc.domain[0], tc.domain[1])
			}
			s := c.AddSeries("y", Points, Style{}, true)
			c.Append(s, tc.xs, make([]float64, len(tc.xs)))
			c.Render()
			ls := lines(c)
			got := strings.Join(strings.Fields(ls[len(ls)-1]), " ")
			if got != tc.want {
				t.Fatalf("got %q, want %q\n%s", got, tc.want, ansi.Strip(c.View()))
			}
		})
	}
}

// TestHiddenSeries: a hidden series is not drawn, does not fit the y range
// and is not inspected, and keeps its points for when it is shown again.
func TestHiddenSeries(t *testing.T) {
	c := New(40, 8)
	c.SetDomain(0, 10)
	a := c.AddSeries("a", Line, Style{}, true)
	b := c.AddSeries("b", Line, Style{}, true)
	c.Append(a, []float64{0, 10}, []float64{1, 2})
	c.Append(b, []float64{0, 10}, []float64{100, 200})
	c.SetHidden(b, true)
	c.Render()
	if got := c.lastYHi; got > 10 {
		t.Errorf("y range reaches %v with b hidden, want under 10", got)
	}
	if got := c.Inspect(5); len(got) != 1 || got[0].Name != "a" {
		t.Errorf("inspect got %+v, want a alone", got)
	}
	c.Append(b, []float64{10}, []float64{300})
	if c.Dirty() {
		t.Error("a point of a hidden series within the domain calls for a redraw")
	}
	c.SetHidden(b, false)
	c.Render()
	if got := c.lastYHi; got < 300 {
		t.Errorf("y range reaches %v with b shown, want ≥ 300", got)
	}
}

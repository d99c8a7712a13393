package chart_test

import (
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/NimbleMarkets/ntcharts/v2/linechart/timeserieslinechart"

	"thaw/ui/chart"
)

// The comparison the package doc reports: one 76×18 chart of three
// series, and a 160×48 screen of two charts, drawn by this package and by
// ntcharts v2.2.0's braille time-series chart from the same decimated
// points (four per dot column, as Chart keeps). Run interleaved:
//
//	go test -run '^$' -bench 'Frame' -count 4 ./ui/chart

var (
	red   = lipgloss.Color("#e06c75")
	green = lipgloss.Color("#98c379")
	blue  = lipgloss.Color("#61afef")
)

// history is a noisy decaying loss of n steps.
func history(n int, seed uint64, scale float64) (xs, ys []float64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	xs, ys = make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
		ys[i] = scale * (2*math.Exp(-float64(i)/float64(n/4+1)) + 0.3*rng.Float64())
	}
	return xs, ys
}

// m4 keeps the first, lowest, highest and last point of each of cols
// columns, in order.
func m4(xs, ys []float64, cols int) (ox, oy []float64) {
	n := len(xs)
	for c := 0; c < cols; c++ {
		a, b := c*n/cols, (c+1)*n/cols
		if a >= b {
			continue
		}
		lo, hi := a, a
		for i := a; i < b; i++ {
			if ys[i] < ys[lo] {
				lo = i
			}
			if ys[i] > ys[hi] {
				hi = i
			}
		}
		idx := []int{a, min(lo, hi), max(lo, hi), b - 1}
		prev := -1
		for _, i := range idx {
			if i != prev {
				ox, oy = append(ox, xs[i]), append(oy, ys[i])
				prev = i
			}
		}
	}
	return ox, oy
}

const histLen = 100_000

func ours(w, h int, n int) *chart.Chart {
	c := chart.New(w, h)
	c.SetDomain(0, float64(n))
	for k, col := range []color.Color{red, green, blue} {
		s := c.AddSeries("s", chart.Line, chart.Style{FG: col}, true)
		xs, ys := history(n, uint64(k), float64(k+1)/3)
		c.Append(s, xs, ys)
	}
	c.SetMarks([]chart.Mark{{X: float64(n) / 3, Label: "+fc1"}, {X: 2 * float64(n) / 3, Label: "+fc0"}})
	c.Render()
	return c
}

func theirs(w, h int, n int) *timeserieslinechart.Model {
	t0 := time.Unix(0, 0)
	m := timeserieslinechart.New(w, h, timeserieslinechart.WithTimeRange(t0, t0.Add(time.Duration(n)*time.Second)), timeserieslinechart.WithYRange(0, 2))
	for k, col := range []color.Color{red, green, blue} {
		name := []string{"a", "b", "c"}[k]
		xs, ys := history(n, uint64(k), float64(k+1)/3)
		dx, dy := m4(xs, ys, 2*w)
		for i := range dx {
			m.PushDataSet(name, timeserieslinechart.TimePoint{Time: t0.Add(time.Duration(dx[i]) * time.Second), Value: dy[i]})
		}
		m.SetDataSetStyle(name, lipgloss.NewStyle().Foreground(col))
	}
	return &m
}

var sink string

// BenchmarkFrame76x18/ours redraws the chart (forced) and returns its
// string; /ntcharts draws the three data sets and views the canvas.
func BenchmarkFrame76x18(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c := ours(76, 18, histLen)
		b.ReportAllocs()
		for b.Loop() {
			c.SetCursor(0, false)
			c.SetCursor(1, true) // something changed: Render draws
			c.Render()
			sink = c.View()
		}
		b.ReportMetric(float64(len(sink)), "bytes")
	})
	b.Run("ntcharts", func(b *testing.B) {
		m := theirs(76, 18, histLen)
		b.ReportAllocs()
		for b.Loop() {
			m.DrawBrailleAll()
			sink = m.View()
		}
		b.ReportMetric(float64(len(sink)), "bytes")
	})
}

// BenchmarkFrame160x48 draws two 156×21 charts and stacks them, as the
// Train screen at 160×48 does.
func BenchmarkFrame160x48(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		c1, c2 := ours(156, 21, histLen), ours(156, 21, histLen)
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range []*chart.Chart{c1, c2} {
				c.SetCursor(0, false)
				c.SetCursor(1, true)
				c.Render()
			}
			sink = lipgloss.JoinVertical(lipgloss.Left, c1.View(), c2.View())
		}
	})
	b.Run("ntcharts", func(b *testing.B) {
		m1, m2 := theirs(156, 21, histLen), theirs(156, 21, histLen)
		b.ReportAllocs()
		for b.Loop() {
			m1.DrawBrailleAll()
			m2.DrawBrailleAll()
			sink = lipgloss.JoinVertical(lipgloss.Left, m1.View(), m2.View())
		}
	})
}

// BenchmarkAppendRender is one live update: a point arrives on each of
// three series holding n points already, and the chart is redrawn. The
// cost must not grow with n.
func BenchmarkAppendRender(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(strings.Repeat("0", 0)+map[int]string{1_000: "1k", 1_000_000: "1M"}[n], func(b *testing.B) {
			c := ours(76, 18, n)
			c.SetDomain(0, float64(2*n))
			c.Render()
			x := float64(n)
			b.ReportAllocs()
			for b.Loop() {
				x++
				for s := 0; s < 3; s++ {
					c.Append(s, []float64{x}, []float64{0.5})
				}
				c.Render()
				sink = c.View()
			}
		})
	}
}

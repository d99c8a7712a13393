package chart_test

import (
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"thaw/ui/chart"
)

func Example() {
	c := chart.New(60, 12)
	c.SetDomain(0, 600)
	raw := c.AddSeries("loss", chart.Line, chart.Style{Faint: true}, false)
	smooth := c.AddSeries("smoothed", chart.Line, chart.Style{}, true)
	val := c.AddSeries("val", chart.Points, chart.Style{}, true)
	ema := chart.NewEMA(0.6)
	for s := 0; s < 450; s++ {
		y := 2*math.Exp(-float64(s)/120) + 0.1 + 0.05*math.Sin(float64(s))
		c.Append(raw, []float64{float64(s)}, []float64{y})
		c.Append(smooth, []float64{float64(s)}, []float64{ema.Next(y)})
		if s%50 == 0 {
			c.Append(val, []float64{float64(s)}, []float64{2.2*math.Exp(-float64(s)/150) + 0.2})
		}
	}
	c.SetMarks([]chart.Mark{{X: 0, Label: "head"}, {X: 200, Label: "+fc1"}, {X: 400, Label: "+fc0"}})
	c.SetBest(400, 2.2*math.Exp(-400.0/150)+0.2, true)
	c.Render()
	for _, line := range strings.Split(ansi.Strip(c.View()), "\n") {
		fmt.Println(strings.TrimRight(line, " "))
	}
	// Output:
	// head              +fc1               +fc0
	//    │⠝⢦⡀⠈•             ⠨                  ⠅
	//    │⠅ ⠻⣆ ⠑⢄⡀          ⠨                  ⠅
	// 1.5┤⠅  ⠙⠷⣄ ⠈⠢•        ⠨                  ⠅
	//    │⠅    ⠙⢷⣤⡀⠈⠑⠢⣀     ⠨                  ⠅
	// 1.0┤⠅      ⠉⠻⢶⣄⡀ ⠉•⠤⣀ ⠨                  ⠅
	//    │⠅         ⠉⠛⢶⣦⣄⡀ ⠉•⠢⠤⣀⡀              ⠅
	// 0.5┤⠅            ⠈⠉⠛⠻⠷⣮⣤⣄⣀⡈•⠑⠒⠒⠤•⠤⢄⣀•⣀⣀  ⠅
	//    │⠅                 ⠨⠈⠉⠙⠛⠻⠿⠷⠶⡶⣶⣤⣤⣤⣤⣤⣤⣉⣉◆⣀⣀⣀⣀
	// 0.0┤⠅                 ⠨            ⠈⠉⠉⠉⠉⠉⠝⠙⠛⠛⠛
	//    └┬─────────────────┬──────────────────┬─────────────────┬
	//     0                200                400              600
}

package chart

import (
	"image/color"
	"math"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Style is how a series, a mark or a label is drawn. The zero Style is the
// terminal's default colour. A nil FG keeps the terminal's colour, which
// is how a caller honours NO_COLOR.
type Style struct {
	FG    color.Color
	Faint bool
	Bold  bool
}

func (s Style) sgr() string {
	var a ansi.Style
	if s.Bold {
		a = a.Bold()
	}
	if s.Faint {
		a = a.Faint()
	}
	if s.FG != nil {
		a = a.ForegroundColor(s.FG)
	}
	if len(a) == 0 {
		return ""
	}
	return a.String()
}

// braille bit of the dot at (dx, dy) within a cell, dx in [0,2), dy in
// [0,4): the Unicode braille pattern numbering (dots 1-3 and 7 on the
// left, 4-6 and 8 on the right).
var brailleBit = [2][4]uint8{
	{0x01, 0x02, 0x04, 0x40},
	{0x08, 0x10, 0x20, 0x80},
}

// canvas is a grid of cells, each holding braille dots or one overlay
// rune, and the index of the style it is drawn in (0: none). A cell takes
// the style of the last thing drawn into it, so draw order is priority.
type canvas struct {
	w, h   int
	bits   []uint8
	over   []rune
	style  []uint8
	styles []string // SGR prefix per style index; styles[0] = ""
}

func (c *canvas) reset(w, h int) {
	c.w, c.h = w, h
	n := w * h
	if cap(c.bits) < n {
		c.bits = make([]uint8, n)
		c.over = make([]rune, n)
		c.style = make([]uint8, n)
	}
	c.bits, c.over, c.style = c.bits[:n], c.over[:n], c.style[:n]
	clear(c.bits)
	clear(c.over)
	clear(c.style)
	c.styles = append(c.styles[:0], "")
}

// addStyle registers s and returns its index, reusing an equal one.
func (c *canvas) addStyle(s Style) uint8 {
	p := s.sgr()
	if p == "" {
		return 0
	}
	for i, q := range c.styles {
		if q == p {
			return uint8(i)
		}
	}
	if len(c.styles) == 255 {
		return 0
	}
	c.styles = append(c.styles, p)
	return uint8(len(c.styles) - 1)
}

// dot sets the dot at dot coordinates (x, y), y growing downwards; dots
// outside the canvas are ignored.
func (c *canvas) dot(x, y int, st uint8) {
	if x < 0 || y < 0 || x >= 2*c.w || y >= 4*c.h {
		return
	}
	i := (y>>2)*c.w + x>>1
	c.bits[i] |= brailleBit[x&1][y&3]
	c.style[i] = st
}

// vline sets the dots of column x from y0 to y1 inclusive.
func (c *canvas) vline(x, y0, y1 int, st uint8) {
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	y0, y1 = max(y0, 0), min(y1, 4*c.h-1)
	for y := y0; y <= y1; y++ {
		c.dot(x, y, st)
	}
}

// line draws a Bresenham line between two dots, keeping only the dots in
// rows ymin to ymax. A line leaving those rows by far is clipped first, so
// a spike costs no more than a line across the plot.
func (c *canvas) line(x0, y0, x1, y1, ymin, ymax int, st uint8) {
	lo, hi := ymin-1, ymax+1
	if (y0 < lo && y1 < lo) || (y0 > hi && y1 > hi) {
		return
	}
	if y0 < lo || y0 > hi || y1 < lo || y1 > hi {
		fx0, fy0, fx1, fy1 := float64(x0), float64(y0), float64(x1), float64(y1)
		clip := func(fx, fy float64) (int, int) {
			var edge float64
			switch {
			case fy < float64(lo):
				edge = float64(lo)
			case fy > float64(hi):
				edge = float64(hi)
			default:
				return int(fx), int(fy)
			}
			t := (edge - fy0) / (fy1 - fy0)
			return int(math.Round(fx0 + t*(fx1-fx0))), int(edge)
		}
		x0, y0 = clip(fx0, fy0)
		x1, y1 = clip(fx1, fy1)
	}
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	for {
		if y0 >= ymin && y0 <= ymax {
			c.dot(x0, y0, st)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

// put writes an overlay rune into cell (col, row).
func (c *canvas) put(col, row int, r rune, st uint8) {
	if col < 0 || row < 0 || col >= c.w || row >= c.h {
		return
	}
	i := row*c.w + col
	c.over[i] = r
	c.style[i] = st
}

// text writes s from cell (col, row) rightwards, clipped at the edge.
func (c *canvas) text(col, row int, s string, st uint8) int {
	n := 0
	for _, r := range s {
		c.put(col+n, row, r, st)
		n++
	}
	return n
}

// writeRow appends row r to b, emitting one SGR sequence per change of
// style rather than one per cell.
func (c *canvas) writeRow(b *strings.Builder, r int) {
	cur := uint8(0)
	row := r * c.w
	for x := 0; x < c.w; x++ {
		i := row + x
		ch := c.over[i]
		if ch == 0 {
			if c.bits[i] == 0 {
				ch = ' '
			} else {
				ch = rune(0x2800 + int(c.bits[i]))
			}
		}
		st := c.style[i]
		if ch == ' ' {
			// A blank needs no colour: extend the current run instead
			// of breaking it.
			st = cur
		}
		if st != cur {
			if cur != 0 {
				b.WriteString(ansi.ResetStyle)
			}
			if st != 0 {
				b.WriteString(c.styles[st])
			}
			cur = st
		}
		b.WriteRune(ch)
	}
	if cur != 0 {
		b.WriteString(ansi.ResetStyle)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

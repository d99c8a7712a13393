package main

import (
	"testing"
)

func TestBar(t *testing.T) {
	tests := []struct {
		done, total, width int
		want               string
	}{
		{0, 10, 4, "▕    ▏"},
		{5, 10, 4, "▕██  ▏"},
		{10, 10, 4, "▕████▏"},
		{1, 16, 4, "▕▎   ▏"}, // 1/16 of 4 cells is a quarter cell
		{1, 8, 4, "▕▌   ▏"},  // and 1/8 is half a cell
		{12, 10, 4, "▕████▏"},
		{3, 0, 4, "▕████▏"},
	}
	for _, tt := range tests {
		if got := bar(tt.done, tt.total, tt.width); got != tt.want {
			t.Errorf("bar(%d, %d, %d) = %q, want %q", tt.done, tt.total, tt.width, got, tt.want)
		}
	}
}

package main

import "testing"

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "digits-5to9", "digits-5to9"},
		{"unicode kept", "Ankle boot ×2 — é", "Ankle boot ×2 — é"},
		{"colour", "\x1b[31mred\x1b[0m", "red"},
		{"cursor movement", "a\x1b[2;5Hb\x1b[Kc", "abc"},
		{"title via OSC BEL", "x\x1b]0;pwned\x07y", "xy"},
		{"hyperlink via OSC ST", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"DCS", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"},
		{"two-byte escape", "a\x1bcb", "ab"},
		{"charset escape", "a\x1b(Bb", "ab"},
		{"unterminated CSI", "a\x1b[31", "a"},
		{"lone ESC", "a\x1b", "a"},
		{"C0 and DEL", "a\x00b\x07c\x08d\x7fe", "abcde"},
		{"C1 CSI", "a\u009b31mb", "a31mb"},
		{"newlines and tabs", "a\nb\tc\r", "a b c "},
		{"bidi override", "abc\u202edcba", "abcdcba"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in); got != tt.want {
				t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

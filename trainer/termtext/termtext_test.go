package termtext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

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
			if got := Sanitize(tt.in); got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mred\x1b[0m", "x\x1b]0;t\x07y", "a\x1bP\x1b\\", "\u009b\u202e", "a\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Sanitize(in)
		if !utf8.ValidString(out) {
			t.Fatalf("Sanitize(%q) = %q: invalid UTF-8", in, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("Sanitize(%q) = %q: keeps %U", in, out, r)
			}
		}
	})
}

func TestShown(t *testing.T) {
	tests := []struct{ in, want string }{
		{"A", "A"},
		{"\x1b[1mA", "A"},
		{"  A\t\tb  ", "A b"},
		{"A\u200b", "A"},
		{"\u00adA", "A"},
		{"\x1b[1m", ""},
		{"\x1b]0;title\x07", ""},
		{" \t", ""},
		{"Ankle boot", "Ankle boot"},
	}
	for _, tt := range tests {
		if got := Shown(tt.in); got != tt.want {
			t.Errorf("Shown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClash(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		i, j  int
		clash bool
	}{
		{"distinct", []string{"a", "b", "A"}, 0, 0, false},
		{"none", nil, 0, 0, false},
		{"escape sequence", []string{"A", "B", "\x1b[1mA"}, 0, 2, true},
		{"equal bytes", []string{"x", "y", "y"}, 1, 2, true},
		{"zero-width", []string{"cat", "ca\u200bt"}, 0, 1, true},
		{"only an escape", []string{"a", "\x1b[31m"}, 1, -1, true},
		{"blank", []string{" ", "a"}, 0, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, j, ok := Clash(tt.names)
			if ok != tt.clash || ok && (i != tt.i || j != tt.j) {
				t.Errorf("Clash(%q) = %d, %d, %v; want %d, %d, %v", tt.names, i, j, ok, tt.i, tt.j, tt.clash)
			}
		})
	}
}

// FuzzShown: what Shown keeps prints as it is (no control, format or bidi
// characters, single inner spaces, trimmed), and a name always clashes
// with its own sanitised form.
func FuzzShown(f *testing.F) {
	for _, s := range []string{"A", "\x1b[1mA", " a\t\tb ", "ca\u200bt", "\x1b]0;t\x07", "a\xffb", "\u202eabc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Shown(in)
		if !utf8.ValidString(out) || out != strings.TrimSpace(out) || strings.Contains(out, "  ") {
			t.Fatalf("Shown(%q) = %q", in, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("Shown(%q) = %q: keeps %U", in, out, r)
			}
		}
		if Shown(out) != out {
			t.Fatalf("Shown(%q) = %q, but Shown of that is %q", in, out, Shown(out))
		}
		if _, _, clash := Clash([]string{in, Sanitize(in)}); !clash {
			t.Fatalf("%q and its sanitised form do not clash", in)
		}
	})
}

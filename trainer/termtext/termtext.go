// Package termtext makes untrusted text safe to draw on a terminal: names
// of runs, datasets, files and classes, CSV headers, model cards. Every
// front-end (the headless commands, the workbench, the SSH server) and the
// loaders that name things pass such text through Sanitize before it is
// printed or compared for collisions.
package termtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sanitize makes untrusted text (names of runs, datasets, files, classes)
// safe to print on a terminal: escape sequences (CSI, OSC, DCS and the
// other ESC forms) are dropped whole, other control characters (C0, DEL,
// C1) and bidirectional overrides are dropped, tabs and newlines become
// spaces, and invalid UTF-8 becomes U+FFFD.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b:
			i += escapeLen(s[i:])
			continue
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		case unicode.Is(unicode.Bidi_Control, r):
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escapeLen returns the length of the escape sequence at the start of s
// (which starts with ESC), as ECMA-48 delimits it; an unterminated one runs
// to the end of s.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[': // CSI: parameters and intermediates, then a final byte
		for j := 2; j < len(s); j++ {
			if s[j] >= 0x40 && s[j] <= 0x7e {
				return j + 1
			}
		}
		return len(s)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: up to BEL or ST
		for j := 2; j < len(s); j++ {
			if s[j] == 0x07 && s[1] == ']' {
				return j + 1
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 2
			}
		}
		return len(s)
	}
	// A two-byte sequence (ESC c, ESC 7, ...), or ESC with an intermediate.
	j := 1
	for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
		j++
	}
	return min(j+1, len(s))
}

// Shown returns what a reader can tell apart of s on a terminal: Sanitize's
// result without format characters (zero-width spaces and joiners, the soft
// hyphen), with every run of white space as one space, trimmed. Two names
// with the same Shown form look alike once printed; a name whose Shown form
// is empty prints as nothing.
func Shown(s string) string {
	var b strings.Builder
	space := false
	for _, r := range Sanitize(s) {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.Is(unicode.Cf, r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Clash finds names that cannot be told apart once printed (see Shown): it
// returns the indices i < j of the first two names with the same Shown
// form, or i and j = -1 for the first name whose Shown form is empty, and
// ok true; ok is false when every name is visible and distinct from the
// others. Names that are equal byte for byte clash too.
func Clash(names []string) (i, j int, ok bool) {
	seen := make(map[string]int, len(names))
	for k, n := range names {
		s := Shown(n)
		if s == "" {
			return k, -1, true
		}
		if first, dup := seen[s]; dup {
			return first, k, true
		}
		seen[s] = k
	}
	return 0, 0, false
}

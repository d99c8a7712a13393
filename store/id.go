package store

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
)

// An id is 16 bytes: a 48-bit big-endian Unix time in milliseconds followed by
// 80 random bits, written as 26 characters of Crockford's base32 in lower case
// (the layout of a ULID, https://github.com/ulid/spec). Ids sort by creation
// time as plain strings, need no coordination between processes or machines,
// and two ids made in the same millisecond collide with probability 2^-80.

// idLen is the length of an id in characters.
const idLen = 26

// ShortLen is the length of the display prefix returned by [Short]. Ten
// characters hold the millisecond timestamp; the two after it are random, so
// runs started in the same millisecond still differ in most cases, and [Store.Run]
// reports [ErrAmbiguous] when they do not.
const ShortLen = 12

// crockford is Crockford's base32 alphabet: no i, l, o or u.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// newID returns a fresh id for time t.
func newID(t time.Time) string {
	var b [16]byte
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(t.UnixMilli()))
	copy(b[:6], ts[2:])
	// crypto/rand.Read never returns an error on supported platforms; it
	// crashes the program irrecoverably instead.
	rand.Read(b[6:])
	return encodeID(b)
}

// encodeID writes 128 bits as 26 base32 characters, the first of which
// carries only the top 3 bits.
func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [idLen]byte
	for i := idLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Short returns the display prefix of id, as git shows abbreviated hashes.
func Short(id string) string {
	if len(id) <= ShortLen {
		return id
	}
	return id[:ShortLen]
}

// normalizeID lower-cases a user-typed id or prefix and maps the letters
// Crockford's alphabet leaves out to the digits they resemble. It reports
// false when s contains a character that cannot be part of an id.
func normalizeID(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > idLen {
		return "", false
	}
	b := []byte(s)
	for i, c := range b {
		switch c {
		case 'i', 'l':
			b[i] = '1'
		case 'o':
			b[i] = '0'
		}
		if strings.IndexByte(crockford, b[i]) < 0 {
			return "", false
		}
	}
	return string(b), true
}

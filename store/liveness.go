package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"thaw/trainer"
)

// DefaultDoubt is how old a live run's heartbeat may be before a viewer
// doubts it, showing the run as "interrupted?" with the time left until it
// is stale: three missed heartbeats of a recorder at
// [DefaultHeartbeatEvery]. A store with a grace shorter than twice this
// doubts after half its grace instead.
const DefaultDoubt = 3 * DefaultHeartbeatEvery

// Liveness is a run's status judged by its heartbeat at one moment: the
// one rule every reader and every check of the store uses (see [Judge]).
type Liveness struct {
	// Status is the stored status, except that a running or paused run
	// whose heartbeat is stale is interrupted.
	Status Status
	// Doubtful is set for a run that is still live by Status but has sent
	// no heartbeat for longer than the doubt period: it is shown as
	// "interrupted?" until it is stale or beats again.
	Doubtful bool
	// Age is how old the heartbeat is and Left how long until it is stale
	// (zero once it is); both are zero for a run whose stored status is
	// not running or paused.
	Age, Left time.Duration
}

// Judge applies the liveness rule to run r at time now, which must come
// from the clock the heartbeats were written by (see [Store.Now]), with a
// grace period of grace: a running or paused run is interrupted when its
// owning process ran on this machine, in this boot and pid namespace, and
// is gone (its pid free, or held by a process that started at another
// time; see [Run.Process]), or else when its heartbeat is grace or more
// old; one whose heartbeat is older than the doubt period ([DefaultDoubt],
// at most grace/2) is doubtful. Any other run keeps its stored status.
// Judge writes nothing (it reads /proc on Linux); [Store.MarkStale] makes
// the same judgement permanent. Every reader and every check of the store
// applies this one rule.
func Judge(r Run, now time.Time, grace time.Duration) Liveness {
	l := Liveness{Status: r.Status}
	if !r.Status.Live() {
		return l
	}
	l.Age = max(now.Sub(r.Heartbeat), 0)
	if stale(r.Heartbeat, now, grace) || r.Process.gone() {
		l.Status = trainer.StatusInterrupted
		return l
	}
	l.Left = grace - l.Age
	l.Doubtful = l.Age > min(DefaultDoubt, grace/2)
	return l
}

// stale is the rule itself: the heartbeat is grace or more old.
func stale(heartbeat, now time.Time, grace time.Duration) bool {
	return !heartbeat.After(now.Add(-grace))
}

// String says the status as a viewer shows it: "running", "interrupted?
// (stale in 12 s)", "interrupted".
func (l Liveness) String() string {
	if l.Doubtful {
		return fmt.Sprintf("%s? (stale in %d s)", trainer.StatusInterrupted, int(math.Ceil(l.Left.Seconds())))
	}
	return string(l.Status)
}

// Now returns the current time by the database's clock, the clock that
// heartbeats are judged by, so that every process that reads a shared
// store judges a run the same way whatever its own clock says. It returns
// the database's error, if any.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	if s.testNow {
		return s.now(), nil
	}
	var v int64
	if err := s.db.QueryRowContext(ctx, s.d.nowQuery).Scan(&v); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return time.UnixMilli(v), nil
}

// stamp returns the time to record as a heartbeat: the database's clock
// where it may be another machine's (PostgreSQL), so that heartbeats are
// written by the clock they are judged by; this machine's otherwise, which
// costs no query. Should the database not answer, this machine's clock
// stands in, and the write that follows reports the error.
func (s *Store) stamp(ctx context.Context) time.Time {
	if s.testNow || !s.d.sharedClock {
		return s.now()
	}
	t, err := s.Now(ctx)
	if err != nil {
		return s.now()
	}
	return t
}

// Grace returns the store's grace period: how old a live run's heartbeat
// may be before the run counts as interrupted (see [WithGrace]).
func (s *Store) Grace() time.Duration { return s.grace }

// Liveness judges run r now, by the database's clock and the store's
// grace (see [Judge]). It reads the clock and writes nothing, so a store
// opened read-only judges exactly as a writable one does.
func (s *Store) Liveness(ctx context.Context, r Run) (Liveness, error) {
	now, err := s.Now(ctx)
	if err != nil {
		return Liveness{}, err
	}
	return Judge(r, now, s.grace), nil
}

package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Process identifies the process that owns a live run, so that a reader
// on the same machine can tell at once that it is gone instead of waiting
// for its heartbeat to go stale (see [Judge]).
type Process struct {
	// Host is the machine's host name. Boot names one boot of one kernel
	// and the pid namespace in it: the kernel's boot id
	// (/proc/sys/kernel/random/boot_id) and the namespace's inode
	// (/proc/self/ns/pid). Two containers that share a host name differ
	// by it, and so does the same machine after a reboot; pids mean the
	// same process only where Boot is the same. Empty where the system
	// does not tell.
	Host, Boot string
	// PID is the process id and Start the process's start time, in clock
	// ticks after boot (field 22 of /proc/PID/stat): a pid used again by a
	// later process has another start time.
	PID   int
	Start int64
}

// self is this process, read once.
var self = sync.OnceValue(func() Process {
	p := Process{PID: os.Getpid()}
	p.Host, _ = os.Hostname()
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, nerr := os.Readlink("/proc/self/ns/pid")
	if err == nil && nerr == nil {
		if id := strings.TrimSpace(string(boot)); id != "" && ns != "" {
			p.Boot = id + " " + ns
		}
	}
	if p.Boot != "" {
		if start, ok := startTime("self"); ok {
			p.Start = start
		} else {
			p.Boot = "" // without a start time a pid proves nothing
		}
	}
	return p
})

// startTime reads the start time of process pid ("self" or a number) from
// /proc; ok is false when there is no such process or it cannot be read.
func startTime(pid string) (int64, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses itself: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(f[19], 10, 64)
	return v, err == nil
}

// gone reports whether p is known to have ended: it ran on this machine,
// in this boot and pid namespace, and its pid is now free or held by a
// process that started at another time. A process of another machine,
// boot or namespace, or one that did not record itself, is not known to
// have ended: only its heartbeat tells.
func (p Process) gone() bool {
	me := self()
	if p.PID <= 0 || p.Boot == "" || me.Boot == "" || p.Host != me.Host || p.Boot != me.Boot {
		return false
	}
	if p.PID == me.PID {
		return p.Start != me.Start
	}
	start, ok := startTime(strconv.Itoa(p.PID))
	if !ok {
		// Gone, unless /proc hides it from us (a mount with hidepid
		// shows no process of another user: no stat file at all).
		_, err := os.Stat("/proc/" + strconv.Itoa(p.PID))
		return errors.Is(err, fs.ErrNotExist) && !hidesPIDs()
	}
	return start != p.Start
}

// hidesPIDs reports whether /proc hides other users' processes (mounted
// with hidepid): then a missing pid proves nothing.
var hidesPIDs = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == "/proc" && strings.Contains(line, "hidepid=") && !strings.Contains(line, "hidepid=0") &&
			!strings.Contains(line, "hidepid=off") {
			return true
		}
	}
	return false
})

package store

import (
	"errors"
	"strings"
	"syscall"

	"thaw/trainer"
)

// ioFailurePrefix starts the stored error of a run that failed on I/O: such
// a run resumes, from its last good checkpoint, once the storage works
// again.
const ioFailurePrefix = "I/O: "

// IOFailure reports whether err is a failure of the storage rather than of
// the run: a full disk or quota, a file too large, a read-only or failing
// device, or the database unable to write for one of those reasons. A run
// that fails so is recorded as failed and can be resumed.
func IOFailure(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EIO, syscall.EROFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return isDBFull(err)
}

// failedOnIO reports whether r failed on I/O (see [IOFailure]).
func failedOnIO(r Run) bool {
	return r.Status == trainer.StatusFailed && strings.HasPrefix(r.Error, ioFailurePrefix)
}

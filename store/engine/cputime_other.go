//go:build !unix

package engine

import "time"

// processCPU returns zero: this system's processor time is not read.
func processCPU() time.Duration { return 0 }

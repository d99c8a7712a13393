//go:build !unix

package engine

import "time"

// ProcessCPU returns zero: this system's processor time is not read.
func ProcessCPU() time.Duration { return 0 }

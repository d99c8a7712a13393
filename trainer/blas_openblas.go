//go:build openblas

package trainer

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
*/
import "C"

import (
	"os"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

const backend = "openblas"

// OpenBLAS handles transposed operands itself.
const transposeOperands = false

func init() {
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
	// OpenBLAS starts a thread per core whatever GOMAXPROCS says, and its
	// idle threads spin. thaw parallelises in Go (the convolutions' samples,
	// the row blocks of large products, evaluations running beside
	// training), so OpenBLAS's own threads would only fight those for the
	// cores: pin it to one unless the user chose with OPENBLAS_NUM_THREADS
	// or calls SetThreads.
	if os.Getenv("OPENBLAS_NUM_THREADS") == "" {
		SetThreads(1)
	}
}

// SetThreads sets the number of threads the BLAS backend may use for one
// matrix product. gonum's pure-Go backend follows GOMAXPROCS instead and
// ignores it. n below 1 counts as 1.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(max(n, 1))) }

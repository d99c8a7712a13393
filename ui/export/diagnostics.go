package export

import (
	"io"
)

func Diagnostics(w io.Writer, f Format, run Run, opts Options) ([]string, error) {
	return nil, nil
}

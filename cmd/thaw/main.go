// Command thaw is a terminal workbench for fine-tuning neural networks.
package main

import (
	"fmt"
	"os"
)

func main() {
	m := NewMain()
	if err := m.Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "thaw:", err)
		os.Exit(exitCode(err))
	}
}

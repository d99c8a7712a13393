package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"thaw/trainer"
)

// Main holds what the command wires together; tests build one with their own
// streams.
type Main struct {
	Stdout, Stderr io.Writer
}

// NewMain returns a Main writing to the process's streams.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

// usageError marks bad usage or input (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// Run dispatches a command line (without the program name).
func (m *Main) Run(args []string) error {
	fs := flag.NewFlagSet("thaw", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	fmt.Fprintf(m.Stdout, "thaw (BLAS backend: %s)\n", trainer.Backend())
	return nil
}

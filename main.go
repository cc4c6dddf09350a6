// Command sidehook is a sidecar daemon that turns local application events
// into outbound webhooks, and the command line to inspect and drive it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/sidehook/sidehook/cli"
)

const version = "0.1.0"

func main() {
	m := &cli.Main{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Version: version,
	}
	// "sidehook run" handles its own signals (SIGHUP reloads, a second
	// SIGTERM cuts the shutdown short), so the context is never cancelled
	// here.
	os.Exit(exitCode(m.Run(context.Background(), os.Args[1:])))
}

// exitCode maps a command's error to the process's exit status, printing
// the error unless the command already told the user.
func exitCode(err error) int {
	var exit cli.ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		return exit.Code
	}
	fmt.Fprintf(os.Stderr, "sidehook: %v\n", err)
	return 1
}

// Package cli is sidehook's command line: it parses the subcommands and
// their flags, runs the daemon, validates configuration files, and talks to
// a running daemon over its Unix socket (or loopback port) to post events
// and inspect and redeliver deliveries.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Main is the sidehook command. Its fields are the process's environment,
// so tests can run it in-process.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable (os.Getenv in the binary).
	Getenv func(string) string
	// Version is the program's version, shown by "sidehook version" and
	// sent in the User-Agent of deliveries.
	Version string
}

// ExitError asks the caller to exit with Code. The command has already
// told the user why, so nothing more should be printed.
type ExitError struct {
	Code int
}

// Error describes the exit code.
func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Run runs the subcommand named by args[0] with the rest of args.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stdout, helpText)
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		return m.help(rest)
	case "version", "-version", "--version":
		fmt.Fprintf(m.Stdout, "sidehook %s\n", m.Version)
		return nil
	case "run":
		return m.run(ctx, rest)
	case "validate":
		return m.validate(rest)
	case "send":
		return m.send(ctx, rest)
	case "webhooks":
		return m.webhooks(ctx, rest)
	case "history":
		return m.history(ctx, rest)
	case "show":
		return m.show(ctx, rest)
	case "retry":
		return m.retry(ctx, rest)
	case "events":
		return m.events(ctx, rest)
	case "ping":
		return m.ping(ctx, rest)
	case "reload":
		return m.reload(ctx, rest)
	case "secret":
		return m.secret(rest)
	case "verify":
		return m.verify(rest)
	}
	return fmt.Errorf("unknown command %q (see: sidehook help)", cmd)
}

// help prints the overview, or one command's usage for "help COMMAND".
func (m *Main) help(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stdout, helpText)
		return nil
	}
	text, ok := usage(args[0])
	if !ok {
		return fmt.Errorf("unknown command %q (see: sidehook help)", args[0])
	}
	fmt.Fprint(m.Stdout, text)
	return nil
}

const helpText = `sidehook turns local application events into outbound webhooks.

Usage:
  sidehook <command> [flags]

Commands:
  run        run the daemon in the foreground
  validate   check a config file without running it
  send       post one event to the daemon
  webhooks   list the loaded webhooks with counts per status
  history    list deliveries, newest first
  show       show one delivery with every attempt
  retry      redeliver a delivery now
  events     list the event catalog
  ping       check a webhook's URL with a HEAD request
  reload     reload the daemon's config now
  secret     print a new random signing secret (whsec_...)
  verify     check the signature of a saved webhook request
  version    print the version

Run "sidehook help <command>" or "sidehook <command> -h" for its flags.
`

// usage returns a command's usage text, for -h and "help COMMAND".
func usage(name string) (string, bool) {
	switch name {
	case "run":
		return runUsage, true
	case "validate":
		return validateUsage, true
	case "send":
		return sendUsage, true
	case "webhooks":
		return webhooksUsage, true
	case "history":
		return historyUsage, true
	case "show":
		return showUsage, true
	case "retry":
		return retryUsage, true
	case "events":
		return eventsUsage, true
	case "ping":
		return pingUsage, true
	case "reload":
		return reloadUsage, true
	case "secret":
		return secretUsage, true
	case "verify":
		return verifyUsage, true
	case "version":
		return "Usage: sidehook version\n\nPrints sidehook's version.\n", true
	}
	return "", false
}

// connUsage describes the flags every command that talks to the daemon has.
const connUsage = `
Reaching the daemon:
  --socket PATH   the daemon's Unix socket (default: socket from the config
                  file, else $SIDEHOOK_SOCKET, else /run/sidehook/sidehook.sock)
  --addr URL      use the daemon's loopback port instead, e.g.
                  http://127.0.0.1:8787
  --token TOKEN   the daemon's api_token, sent with --addr (default:
                  $SIDEHOOK_API_TOKEN, which keeps it out of ps)
  --config FILE   config file to read the socket from (default:
                  $SIDEHOOK_CONFIG, else /etc/sidehook/webhooks.yaml)
`

// newFlagSet returns a flag set for one command that reports errors and
// prints usage on Stderr.
func (m *Main) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		text, _ := usage(name)
		fmt.Fprint(m.Stderr, text)
	}
	return fs
}

// parse parses flags placed anywhere among args (Go's flag package stops
// at the first argument that is not a flag, but people write
// "history crm-new-lead --status failure") and returns the positional
// arguments. Everything after "--" is positional. A bad flag has already
// been reported with the usage, so it becomes a silent exit 2; -h stays
// flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, ExitError{Code: 2}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseN parses args and checks that exactly len(names) positional
// arguments were given, naming the missing or extra ones.
func parseN(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(names) {
		return nil, argCountError(fs.Name(), pos, names)
	}
	return pos, nil
}

func argCountError(cmd string, got, want []string) error {
	if len(got) < len(want) {
		return fmt.Errorf("%s: missing %s (see: sidehook %s -h)", cmd, strings.Join(want[len(got):], " "), cmd)
	}
	return fmt.Errorf("%s: unexpected argument %q (see: sidehook %s -h)", cmd, got[len(want)], cmd)
}

// getenv reads an environment variable; a Main without Getenv sees an
// empty environment.
func (m *Main) getenv(key string) string {
	if m.Getenv == nil {
		return ""
	}
	return m.Getenv(key)
}

// orDefault returns the environment variable env when set, else def.
func (m *Main) orDefault(env, def string) string {
	if v := m.getenv(env); v != "" {
		return v
	}
	return def
}

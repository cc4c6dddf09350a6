package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/daemon"
)

const runUsage = `Usage: sidehook run [--config FILE] [--data DIR] [--log-level LEVEL] [--log-format FORMAT]

Runs the daemon in the foreground until SIGTERM or SIGINT; SIGHUP reloads
the config (so does saving the file). systemd runs this.

Flags:
  --config FILE        config file (default: $SIDEHOOK_CONFIG, else
                       /etc/sidehook/webhooks.yaml)
  --data DIR           store directory (default: data_dir from the config,
                       else $STATE_DIRECTORY, else /var/lib/sidehook)
  --log-level LEVEL    debug, info, warn or error (default: $SIDEHOOK_LOG_LEVEL,
                       else info)
  --log-format FORMAT  auto, pretty or json (default: auto: pretty on a
                       terminal, JSON otherwise)
`

func (m *Main) run(ctx context.Context, args []string) error {
	fs := m.newFlagSet("run")
	configFile := fs.String("config", m.defaultConfig(), "config file")
	dataDir := fs.String("data", "", "store directory")
	level := fs.String("log-level", m.orDefault("SIDEHOOK_LOG_LEVEL", "info"), "log level")
	format := fs.String("log-format", "auto", "log format")
	if _, err := parseN(fs, args); err != nil {
		return err
	}
	logger, err := daemon.NewLogger(m.Stderr, *level, *format)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Options{
		ConfigFile: *configFile,
		DataDir:    *dataDir,
		Logger:     logger,
		Version:    m.Version,
		Getenv:     m.Getenv,
	})
}

const validateUsage = `Usage: sidehook validate [--config FILE]

Checks a config file (and its webhooks.d/ folder) without running it.
Prints FILE:LINE:COL: message for each problem and exits 1, or prints a
one-line summary and exits 0. ${VAR}s are expanded from the environment,
so run it with the daemon's environment.

Flags:
  --config FILE   config file (default: $SIDEHOOK_CONFIG, else
                  /etc/sidehook/webhooks.yaml)
`

func (m *Main) validate(args []string) error {
	fs := m.newFlagSet("validate")
	configFile := fs.String("config", m.defaultConfig(), "config file")
	if _, err := parseN(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*configFile)
	var problems config.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(m.Stdout, p.Error())
		}
		return ExitError{Code: 1}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s: ok, %s, %s subscribed\n",
		*configFile, plural(len(cfg.Webhooks), "webhook", "webhooks"), plural(subscribedTypes(cfg), "event type", "event types"))
	return nil
}

// subscribedTypes counts the distinct event types the webhooks receive.
func subscribedTypes(cfg *config.Config) int {
	seen := map[string]bool{}
	for _, w := range cfg.Webhooks {
		for _, code := range w.Events {
			seen[code] = true
		}
	}
	return len(seen)
}

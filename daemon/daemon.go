// Package daemon is the sidehook process: it loads the configuration,
// opens the delivery engine, serves the event and API routes on a Unix
// socket and an optional loopback port, reloads on request, speaks the
// systemd notify protocol and shuts down in a fixed order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// Options configure a daemon.
type Options struct {
	// ConfigFile is the YAML configuration to load and watch.
	ConfigFile string
	// DataDir overrides the configuration's data_dir.
	DataDir string
	Logger  *slog.Logger
	// Version is reported in the User-Agent of every request.
	Version string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// ShutdownGrace is how long a stop waits for attempts in flight before
// cancelling them (they stay queued and are retried at the next start).
const ShutdownGrace = 20 * time.Second

// Daemon is a running sidehook.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	engine  *delivery.Engine
	reg     *prometheus.Registry
	notify  *notifier
	socket  string
	servers []*http.Server
	addrs   []net.Addr

	cfg       atomic.Pointer[config.Config]
	configErr atomic.Pointer[string]
	reloadMu  sync.Mutex

	maxBody  int64
	stopOnce sync.Once
	stopErr  error
	done     chan struct{}
}

// Start loads the configuration, opens the store, binds the listeners and
// starts delivering. It returns once the daemon is ready.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	cfg, err := config.Load(opts.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	d := &Daemon{
		opts:    opts,
		log:     opts.Logger,
		reg:     prometheus.NewRegistry(),
		notify:  newNotifier(opts.Getenv("NOTIFY_SOCKET")),
		maxBody: 1 << 20,
		done:    make(chan struct{}),
	}
	d.cfg.Store(cfg)
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	dataDir := d.dataDir(cfg)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	d.engine, err = delivery.Open(cfg, delivery.Options{
		Dir:        dataDir,
		Logger:     d.log,
		UserAgent:  "sidehook/" + opts.Version,
		Registerer: d.reg,
	})
	if err != nil {
		return nil, err
	}
	if err := d.listen(cfg); err != nil {
		d.engine.Close(context.Background())
		return nil, err
	}
	if err := d.engine.Start(); err != nil {
		d.closeListeners()
		d.engine.Close(context.Background())
		return nil, err
	}
	d.log.Info("sidehook ready", "version", opts.Version, "config", cfg.File, "data", dataDir,
		"socket", d.socket, "listen", cfg.Listen, "webhooks", len(cfg.Webhooks), "queued", d.engine.QueueDepth())
	d.notify.send("READY=1\nSTATUS=" + d.status())
	return d, nil
}

// Run starts the daemon and serves until SIGTERM or SIGINT, reloading on
// SIGHUP. A second stop signal cuts the shutdown's grace period short.
func Run(ctx context.Context, opts Options) error {
	d, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case <-ctx.Done():
			return d.Shutdown(context.Background())
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.Reload()
				continue
			}
			d.log.Info("stopping", "signal", sig.String())
			sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
			go func() {
				select {
				case s := <-sigs:
					if s != syscall.SIGHUP {
						d.log.Warn("second signal: cancelling attempts in flight", "signal", s.String())
						cancel()
					}
				case <-sctx.Done():
				}
			}()
			err := d.Shutdown(sctx)
			cancel()
			return err
		}
	}
}

// Socket returns the path of the Unix socket.
func (d *Daemon) Socket() string { return d.socket }

// Addr returns the TCP listener's address, or "" when there is none.
func (d *Daemon) Addr() string {
	for _, a := range d.addrs {
		if a.Network() == "tcp" {
			return a.String()
		}
	}
	return ""
}

// Engine returns the delivery engine.
func (d *Daemon) Engine() *delivery.Engine { return d.engine }

// Done is closed when the daemon has shut down.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Shutdown stops accepting requests, lets attempts in flight finish until
// ctx is done (the rest stay queued), and closes the store.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.stopOnce.Do(func() {
		d.notify.send("STOPPING=1")
		var errs []error
		for _, s := range d.servers {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
				s.Close()
			}
			cancel()
		}
		if err := d.engine.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		d.stopErr = errors.Join(errs...)
		d.log.Info("sidehook stopped")
		close(d.done)
	})
	return d.stopErr
}

// Reload loads the configuration file again and, when it is valid, makes
// it the one in force. A broken file leaves the previous configuration
// running; the error is logged and shown by /readyz and /v1/webhooks.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.notify.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer d.notify.send("READY=1\nSTATUS=" + d.status())
	old := d.cfg.Load()
	cfg, err := config.Load(old.File)
	if err != nil {
		msg := err.Error()
		d.configErr.Store(&msg)
		d.log.Error("config rejected; the previous config stays in force", "config", old.File, "err", err)
		return err
	}
	d.configErr.Store(nil)
	d.cfg.Store(cfg)
	d.engine.SetConfig(cfg)
	added, removed, changed := diffWebhooks(old, cfg)
	d.log.Info("config reloaded", "config", cfg.File, "webhooks", len(cfg.Webhooks),
		"added", added, "removed", removed, "changed", changed)
	return nil
}

func (d *Daemon) status() string {
	return fmt.Sprintf("%d webhooks, %d queued", len(d.cfg.Load().Webhooks), d.engine.QueueDepth())
}

// dataDir picks the store's directory: --data, the file's data_dir
// (relative to the file), $STATE_DIRECTORY (systemd), the default.
func (d *Daemon) dataDir(cfg *config.Config) string {
	switch {
	case d.opts.DataDir != "":
		return d.opts.DataDir
	case cfg.DataDir != "":
		return relativeTo(cfg.File, cfg.DataDir)
	case d.opts.Getenv("STATE_DIRECTORY") != "":
		return filepath.SplitList(d.opts.Getenv("STATE_DIRECTORY"))[0]
	}
	return config.DefaultDataDir
}

// relativeTo resolves a path from the configuration against the
// directory of the file that names it.
func relativeTo(file, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(file), p)
}

func diffWebhooks(old, cur *config.Config) (added, removed, changed []string) {
	for _, w := range cur.Webhooks {
		o := old.Webhook(w.ID)
		switch {
		case o == nil:
			added = append(added, w.ID)
		case !sameWebhook(o, w):
			changed = append(changed, w.ID)
		}
	}
	for _, w := range old.Webhooks {
		if cur.Webhook(w.ID) == nil {
			removed = append(removed, w.ID)
		}
	}
	return added, removed, changed
}

// sameWebhook compares two definitions, ignoring where they stand in the
// file.
func sameWebhook(a, b *config.Webhook) bool {
	x, y := *a, *b
	x.Pos, y.Pos = config.Pos{}, config.Pos{}
	return reflect.DeepEqual(x, y)
}

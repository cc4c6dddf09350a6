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
	"runtime"
	"runtime/debug"
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
	lastSum   string // configSum of the files last loaded; under reloadMu
	watcher   *config.Watcher
	metrics   *daemonMetrics
	// dataDirPath is the store's directory.
	dataDirPath string

	// bgCtx ends the background work (notify loops, handshakes) at
	// shutdown; bg waits for it.
	bgCtx  context.Context
	bgStop context.CancelFunc
	bg     sync.WaitGroup

	hsMu  sync.Mutex
	hs    map[string]*handshakeOut // last handshake per webhook
	hsGen atomic.Uint64

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
	sum := configSum(opts.ConfigFile)
	cfg, err := config.Load(opts.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	d := &Daemon{
		opts:    opts,
		log:     opts.Logger,
		reg:     prometheus.NewRegistry(),
		notify:  newNotifier(opts.Getenv("NOTIFY_SOCKET")),
		done:    make(chan struct{}),
		lastSum: sum,
		hs:      map[string]*handshakeOut{},
	}
	d.cfg.Store(cfg)
	d.warnInsecure(cfg)
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	dataDir := d.dataDir(cfg)
	d.dataDirPath = dataDir
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	d.engine, err = delivery.Open(cfg, delivery.Options{
		Dir:        dataDir,
		Logger:     d.log,
		UserAgent:  "sidehook/" + opts.Version,
		MinFree:    cfg.MinFreeSpace,
		Registerer: d.reg,
	})
	if err != nil {
		return nil, err
	}
	d.metrics = newDaemonMetrics(d)
	if err := d.listen(cfg); err != nil {
		d.engine.Close(context.Background())
		return nil, err
	}
	if err := d.engine.Start(); err != nil {
		d.closeListeners()
		d.engine.Close(context.Background())
		return nil, err
	}
	d.bgCtx, d.bgStop = context.WithCancel(context.Background())
	if err := d.watchConfig(cfg.File); err != nil {
		d.log.Warn("config file not watched; reload with SIGHUP or sidehook reload", "config", cfg.File, "err", err)
	}
	d.handshakes(cfg)
	d.log.Info("sidehook ready", "version", opts.Version, "config", cfg.File, "data", dataDir,
		"socket", d.socket, "listen", cfg.Listen, "webhooks", len(cfg.Webhooks), "queued", d.engine.QueueDepth())
	d.notify.send("READY=1\nSTATUS=" + d.status())
	d.startNotifyLoops()
	return d, nil
}

// Run starts the daemon and serves until SIGTERM or SIGINT, reloading on
// SIGHUP. A second stop signal cuts the shutdown's grace period short.
func Run(ctx context.Context, opts Options) error {
	tuneRuntime()
	// Signals are caught from before READY=1: a stop or reload sent right
	// after it waits in the channel instead of killing the process.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	d, err := Start(ctx, opts)
	if err != nil {
		return err
	}
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

// tuneRuntime sets the Go runtime's collector and processor count for the
// daemon, each only where the environment leaves it unset. Both are read
// from the process's own environment, not opts.Getenv, because that is
// the one the runtime read them from.
func tuneRuntime() {
	// Under load the live heap is about 50 MiB, most of it Badger's
	// memtables and the buffers it builds tables in; at Go's default
	// GOGC=100 the heap grows to twice that before each collection.
	// Collecting at half that growth takes tens of MiB off the daemon's
	// peaks at 5,000 events/s, for a few percent more CPU on a deep
	// drain. GOGC in the environment still wins (bench/README.md: "Memory").
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// Twice as many processors as cores: when Badger's compactions fill
	// every core, the kernel, which preempts sooner than Go's 10 ms, then
	// shares the cores between them and the deliveries falling due
	// (bench/README.md: "Punctuality behind compactions"). GOMAXPROCS in the
	// environment still wins. The count starts from Go's default, which
	// follows the cgroup's CPU limit; setting it stops Go's own updates
	// when that limit changes, so a restart picks a new one up.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.SetDefaultGOMAXPROCS()
		runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
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
		if d.watcher != nil {
			d.watcher.Close()
		}
		d.bgStop()
		d.bg.Wait()
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
	_, err := d.reload(false)
	return err
}

// reload is Reload; with onlyIfChanged (the file watcher) it does nothing
// when the files hold the same bytes as at the last load, so that a touch
// or an editor's extra events make no noise. It reports whether it loaded.
func (d *Daemon) reload(onlyIfChanged bool) (bool, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.cfg.Load()
	sum := configSum(old.File)
	if onlyIfChanged && sum == d.lastSum {
		return false, nil
	}
	// An empty main file is most often one being written in place
	// (truncated, not yet filled): loading it would remove every webhook
	// and fail their queued deliveries. The watcher waits for the write;
	// a reload on demand refuses it.
	if fi, err := os.Stat(old.File); err == nil && fi.Size() == 0 {
		if onlyIfChanged {
			d.log.Info("config file is empty; waiting for it to be written", "config", old.File)
			return false, nil
		}
		err := fmt.Errorf("%s: the file is empty (to run without webhooks, write \"webhooks: []\")", old.File)
		msg := err.Error()
		d.configErr.Store(&msg)
		d.metrics.reloaded(false)
		d.log.Error("config rejected; the previous config stays in force", "config", old.File, "err", err)
		return true, err
	}
	d.lastSum = sum
	d.notify.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer func() { d.notify.send("READY=1\nSTATUS=" + d.status()) }()
	cfg, err := config.Load(old.File)
	if err != nil {
		msg := err.Error()
		d.configErr.Store(&msg)
		d.metrics.reloaded(false)
		d.log.Error("config rejected; the previous config stays in force", "config", old.File, "err", err)
		return true, err
	}
	d.configErr.Store(nil)
	d.cfg.Store(cfg)
	if o, n := old.Limits, cfg.Limits; o.MaxHeaderBytes != n.MaxHeaderBytes || o.MaxConnections != n.MaxConnections {
		d.log.Warn("limits.max_header_bytes and limits.max_connections apply at the next start; the listeners keep the old ones",
			"max_header_bytes", o.MaxHeaderBytes, "max_connections", o.MaxConnections)
	}
	d.warnInsecure(cfg)
	d.engine.SetConfig(cfg)
	d.metrics.reloaded(true)
	added, removed, changed := diffWebhooks(old, cfg)
	d.log.Info("config reloaded", "config", cfg.File, "webhooks", len(cfg.Webhooks),
		"added", added, "removed", removed, "changed", changed)
	d.handshakes(cfg)
	return true, nil
}

func (d *Daemon) status() string {
	s := fmt.Sprintf("%d webhooks, %d queued", len(d.cfg.Load().Webhooks), d.engine.QueueDepth())
	if d.configErr.Load() != nil {
		s += "; config file refused, previous config in force (see: sidehook webhooks)"
	}
	return s
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

package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sidehook/sidehook/config"
)

// listen binds the Unix socket and, when configured, the loopback port,
// and serves the API on both. Each listener serves at most
// limits.max_connections connections at once and reads at most
// limits.max_header_bytes of a request's headers; both are read here, at
// start, so a reload does not change them.
//
// Under socket activation (sidehook.socket), the listeners come from
// systemd instead: a Unix one is the socket, a TCP one the port; what
// systemd did not pass is bound as configured.
func (d *Daemon) listen(cfg *config.Config) error {
	d.socket = d.socketPath(cfg)
	gid := -1
	if cfg.SocketGroup != "" {
		var err error
		if gid, err = lookupGroup(cfg.SocketGroup); err != nil {
			return err
		}
	}
	inherited, err := activationListeners(d.opts.Getenv, os.Getpid(), listenFDsStart)
	if err != nil {
		return err
	}
	var ul, tl net.Listener
	for _, l := range inherited {
		switch {
		case l.Addr().Network() == "unix" && ul == nil:
			ul = l
			d.socket = l.Addr().String()
			if cfg.SocketGroup != "" {
				d.log.Warn("socket_group is not applied to a socket passed by systemd; set SocketGroup= in sidehook.socket", "socket_group", cfg.SocketGroup)
			}
		case l.Addr().Network() == "tcp" && tl == nil:
			tl = l
		default:
			d.log.Warn("socket activation: extra socket ignored", "addr", l.Addr().String())
			l.Close()
		}
	}
	if len(inherited) > 0 {
		d.log.Info("socket activation", "sockets", len(inherited))
	}
	if ul == nil {
		if ul, err = listenUnix(d.socket); err == nil && gid >= 0 {
			if err = chownSocket(d.socket, cfg.SocketGroup, gid); err != nil {
				ul.Close()
			}
		}
		if err != nil {
			if tl != nil {
				tl.Close()
			}
			return err
		}
	}
	ls := []net.Listener{ul}
	if tl == nil && cfg.Listen != "" {
		if tl, err = listenTCP(cfg.Listen, cfg.ListenPublic); err != nil {
			ul.Close()
			return err
		}
	}
	if tl != nil {
		ls = append(ls, tl)
	}
	if tl != nil && !cfg.ListenPublic && !config.IsLoopback(tl.Addr().String()) {
		ul.Close()
		tl.Close()
		return fmt.Errorf("socket activation passed TCP socket %s, which is not loopback: set listen_public: true and api_token to serve it, or bind it to 127.0.0.1", tl.Addr())
	}
	handler := d.routes()
	for _, l := range ls {
		l = limitListen(l, cfg.Limits.MaxConnections)
		h := handler
		if l.Addr().Network() == "tcp" {
			// The TCP listener needs api_token when one is set; the
			// socket's mode and group are its own access control.
			h = d.requireToken(handler, !config.IsLoopback(l.Addr().String()))
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		}
		d.servers = append(d.servers, srv)
		d.addrs = append(d.addrs, l.Addr())
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("serve", "addr", l.Addr().String(), "err", err)
			}
		}(l)
	}
	return nil
}

func (d *Daemon) closeListeners() {
	for _, s := range d.servers {
		s.Close()
	}
}

// socketPath picks the socket: the file's socket (relative to the file),
// $SIDEHOOK_SOCKET, the default.
func (d *Daemon) socketPath(cfg *config.Config) string {
	switch {
	case cfg.Socket != "":
		return relativeTo(cfg.File, cfg.Socket)
	case d.opts.Getenv("SIDEHOOK_SOCKET") != "":
		return d.opts.Getenv("SIDEHOOK_SOCKET")
	}
	return config.DefaultSocket
}

// listenUnix binds a Unix socket with mode 0660. A stale socket file left
// by a crash is replaced; a live one, or a path that is not a socket, is
// refused.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %s exists and is not a socket: remove it or set another socket in the config", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s is in use: is another sidehook running? stop it or set another socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode of socket %s: %w", path, err)
	}
	return l, nil
}

// listenLoopback binds the TCP listener, which must be a loopback
// address: the API has no authentication of its own.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %q: want host:port, e.g. 127.0.0.1:8787", addr)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("listen %q: sidehook binds loopback addresses only (127.0.0.1, ::1 or localhost)", addr)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

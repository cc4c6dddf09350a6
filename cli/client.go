package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sidehook/sidehook/config"
)

// connFlags are the flags of every command that talks to the daemon.
type connFlags struct {
	config string
	socket string
	addr   string
	token  string
}

// addConnFlags registers --config, --socket and --addr on fs.
func (m *Main) addConnFlags(fs *flag.FlagSet) *connFlags {
	c := &connFlags{}
	fs.StringVar(&c.config, "config", m.defaultConfig(), "config file to read the socket from")
	fs.StringVar(&c.socket, "socket", "", "the daemon's Unix socket")
	fs.StringVar(&c.addr, "addr", "", "the daemon's loopback URL, e.g. http://127.0.0.1:8787")
	fs.StringVar(&c.token, "token", "", "the daemon's api_token, for --addr (default: $SIDEHOOK_API_TOKEN)")
	return c
}

// defaultConfig is the config file used without --config.
func (m *Main) defaultConfig() string {
	return m.orDefault("SIDEHOOK_CONFIG", config.DefaultConfigFile)
}

// client returns a client for the daemon the flags point at: --addr when
// given, else the Unix socket.
// apiCommand parses the flags of a command that talks to the daemon, has
// only --json of its own and takes exactly the named arguments, and
// returns the client for it.
func (m *Main) apiCommand(name string, args []string, names ...string) (c *client, pos []string, asJSON bool, err error) {
	fs := m.newFlagSet(name)
	conn := m.addConnFlags(fs)
	j := fs.Bool("json", false, "print JSON")
	if pos, err = parseN(fs, args, names...); err != nil {
		return nil, nil, false, err
	}
	if c, err = m.client(conn); err != nil {
		return nil, nil, false, err
	}
	return c, pos, *j, nil
}

func (m *Main) client(c *connFlags) (*client, error) {
	if c.addr != "" {
		cl, err := newTCPClient(c.addr, c.config)
		if cl != nil {
			// Only the TCP listener asks for a token; the socket's mode
			// and group are its access control.
			cl.token = m.orDefault("SIDEHOOK_API_TOKEN", "")
			if c.token != "" {
				cl.token = c.token
			}
		}
		return cl, err
	}
	return newSocketClient(m.socketPath(c), c.config), nil
}

// socketPath picks the daemon's socket: --socket, else the config file's
// socket, else $SIDEHOOK_SOCKET, else the default. A relative socket in the
// config file is relative to the file's directory, as the daemon reads it
// (config.Peek resolves it). Problems in the file are ignored here: the
// daemon may well be running an older, valid version of it.
func (m *Main) socketPath(c *connFlags) string {
	if c.socket != "" {
		return c.socket
	}
	if s, _ := config.Peek(c.config); s.Socket != "" {
		return s.Socket
	}
	return m.orDefault("SIDEHOOK_SOCKET", config.DefaultSocket)
}

// client talks to the daemon's HTTP API.
type client struct {
	http   *http.Client
	base   string // URL prefix of every request
	target string // where the daemon is, for messages
	config string // the config file, for the hint to start the daemon
	token  string // bearer token for the TCP listener; "" for none
}

// dialTimeout bounds connecting to the daemon, which is local.
const dialTimeout = 5 * time.Second

func newSocketClient(socket, configFile string) *client {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &client{
		http:   &http.Client{Transport: transport},
		base:   "http://sidehook",
		target: socket,
		config: configFile,
	}
}

func newTCPClient(addr, configFile string) (*client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--addr %q: want the daemon's URL, e.g. http://127.0.0.1:8787", addr)
	}
	transport := &http.Transport{DialContext: (&net.Dialer{Timeout: dialTimeout}).DialContext}
	return &client{
		http:   &http.Client{Transport: transport},
		base:   strings.TrimSuffix(u.String(), "/"),
		target: u.Host,
		config: configFile,
	}, nil
}

// apiError is an answer from the daemon outside 2xx.
type apiError struct {
	Status  int
	Message string // the daemon's {"error": ...}, or a description of the answer
	Body    []byte
}

func (e *apiError) Error() string { return e.Message }

// unreachableError means no daemon answered at the target.
type unreachableError struct {
	target string
	config string
	err    error
}

func (e *unreachableError) Error() string {
	if errors.Is(e.err, fs.ErrPermission) {
		return fmt.Sprintf("cannot reach the daemon at %s: permission denied (run as root or as a member of the socket's group)", e.target)
	}
	return fmt.Sprintf("cannot reach the daemon at %s (is it running? start it with: sidehook run --config %s)", e.target, e.config)
}

func (e *unreachableError) Unwrap() error { return e.err }

// call sends a request with an optional JSON body and returns the answer's
// body. When out is not nil, a 2xx answer is decoded into it. An answer
// outside 2xx is an *apiError; the body is returned with it.
func (c *client) call(ctx context.Context, method, path string, body []byte, out any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return nil, &unreachableError{target: c.target, config: c.config, err: err}
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := newAPIError(resp, raw)
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "" {
			e.Message += "; give the daemon's api_token with --token or $SIDEHOOK_API_TOKEN"
		}
		return raw, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decode answer to %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

func newAPIError(resp *http.Response, raw []byte) *apiError {
	e := &apiError{Status: resp.StatusCode, Body: raw}
	var msg struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &msg) == nil && msg.Error != "" {
		e.Message = msg.Error
		return e
	}
	e.Message = fmt.Sprintf("the daemon answered %s", resp.Status)
	if text := strings.TrimSpace(string(raw)); text != "" {
		first, _, _ := strings.Cut(text, "\n")
		e.Message += ": " + first
	}
	return e
}

// writeJSON prints a JSON answer indented, for --json.
func writeJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("indent JSON answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/sidehook/sidehook/config"
)

// lookupGroup returns the id of the group socket_group names: a group name,
// or a numeric id when no group has that name.
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		var unknown user.UnknownGroupError
		if !errors.As(err, &unknown) {
			return 0, fmt.Errorf("socket_group %q: %w", name, err)
		}
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return 0, fmt.Errorf("socket_group %q: no such group", name)
		}
		if g, err = user.LookupGroupId(name); err != nil {
			return 0, fmt.Errorf("socket_group %q: no such group", name)
		}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("socket_group %q: group id %q is not a number", name, g.Gid)
	}
	return gid, nil
}

// chownSocket gives the socket file to group gid; its mode stays 0660, so
// the group's members may use it.
func chownSocket(path, group string, gid int) error {
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("socket_group %q: give socket %s to the group: %w (sidehook must run as root or be a member of the group)", group, path, err)
	}
	return nil
}

// listenTCP binds the TCP listener: loopback only, unless listen_public.
func listenTCP(addr string, public bool) (net.Listener, error) {
	if !public {
		return listenLoopback(addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// tokenError is the answer to a request on the TCP listener without the
// right bearer token.
const tokenError = "missing or wrong bearer token (set Authorization: Bearer …)"

// requireToken wraps the TCP listener's handler: when api_token is set,
// every request but the health checks must carry it as a bearer token.
// The token is read from the configuration in force, so a reload can
// rotate it. public says the listener is not on loopback: there, a
// configuration without api_token (a reload that dropped it) refuses
// every request instead of opening the API. The Unix socket does not go
// through here: its mode and group are its access control.
func (d *Daemon) requireToken(next http.Handler, public bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		want := d.cfg.Load().APIToken
		if want == "" && !public {
			next.ServeHTTP(w, r)
			return
		}
		if want == "" || !tokenMatches(r, want) {
			// Basic lets a browser ask for the token on the history pages.
			w.Header().Add("WWW-Authenticate", "Bearer")
			w.Header().Add("WWW-Authenticate", `Basic realm="sidehook", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, tokenError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenMatches reports whether a request carries want as a bearer token,
// or as the password of HTTP Basic (any user name, for browsers), in time
// that does not depend on how much of it matches.
func tokenMatches(r *http.Request, want string) bool {
	got := ""
	if _, pass, ok := r.BasicAuth(); ok {
		got = pass
	} else if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		got = strings.TrimSpace(tok)
	} else {
		return false
	}
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// warnInsecure logs every webhook that turns TLS verification off; it
// runs at each load so the setting is never forgotten.
func (d *Daemon) warnInsecure(cfg *config.Config) {
	for _, wh := range cfg.Webhooks {
		if wh.TLS != nil && wh.TLS.InsecureSkipVerify {
			d.log.Warn("TLS certificate verification is off for this webhook (tls.insecure_skip_verify: true): anyone on the path can read and change its requests",
				"webhook", wh.ID, "url", wh.URL)
		}
	}
}

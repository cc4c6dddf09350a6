package daemon

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves Go's profiler under /debug/pprof/ when the config in
// force sets pprof: true, and only to clients of the Unix socket: profiles
// show memory contents and cost CPU, so they stay behind the socket's
// permissions. Elsewhere the routes answer 404, as if absent.
func (d *Daemon) pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, onSocket := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr)
		if !onSocket || !d.cfg.Load().Pprof {
			http.NotFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Package ui serves sidehook's history pages for people: the loaded
// webhooks with their counts and last-hour figures (/), one webhook's
// deliveries (/webhooks/{id}) and one delivery with every attempt
// (/deliveries/{id}), from which a delivery can be retried.
//
// The pages are rendered on the server with html/template, so they work
// without JavaScript; a small embedded script localises times and keeps
// the lists up to date by fetching the page again every two seconds and
// swapping the parts marked data-live. Nothing is loaded from elsewhere:
// the stylesheet and the script are embedded and served under /ui/.
package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sidehook/sidehook/delivery"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Paths the handler serves. The daemon mounts the handler on each.
const (
	PatternIndex    = "GET /{$}"
	PatternWebhook  = "GET /webhooks/{id}"
	PatternDelivery = "GET /deliveries/{id}"
	PatternRetry    = "POST /deliveries/{id}/retry"
	PatternAsset    = "GET /ui/{file}"
)

// RetryTimeout bounds a manual retry made from the delivery page, on top
// of the webhook's own timeout, so that a closed browser tab does not
// cancel an attempt half made.
const RetryTimeout = 2 * time.Minute

// Options configure the pages.
type Options struct {
	// Version is shown in the footer.
	Version string
	// ConfigError returns the error of the last refused configuration, or
	// "" when the file in force is the one on disk. Nil shows nothing.
	ConfigError func() string
	// Logger receives errors met while serving; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Handler serves the history pages. Create it with New.
type Handler struct {
	engine *delivery.Engine
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	pages  map[string]*template.Template
	// csrfKey signs the retry form's token; it lives as long as the
	// process, so a page rendered before a restart needs a reload.
	csrfKey []byte
	assetV  string
	stats   *statsCache
}

// New returns the pages of engine's history.
func New(engine *delivery.Engine, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := make([]byte, 32)
	rand.Read(key)
	h := &Handler{
		engine:  engine,
		opts:    opts,
		log:     log,
		pages:   parsePages(),
		csrfKey: key,
		assetV:  assetVersion(),
		stats:   newStatsCache(statsTTL),
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusForbidden, "Cross-origin request refused",
			"This action must be submitted from sidehook's own pages.")
	}))
	mux := http.NewServeMux()
	mux.HandleFunc(PatternIndex, h.index)
	mux.HandleFunc(PatternWebhook, h.webhook)
	mux.HandleFunc(PatternDelivery, h.delivery)
	mux.Handle(PatternRetry, cop.Handler(http.HandlerFunc(h.retry)))
	mux.HandleFunc(PatternAsset, h.asset)
	h.mux = mux
	return h
}

// Patterns returns the method-and-path patterns the handler answers, for
// mounting it on a ServeMux.
func Patterns() []string {
	return []string{PatternIndex, PatternWebhook, PatternDelivery, PatternRetry, PatternAsset}
}

// ServeHTTP serves a history page, a retry, or an embedded asset.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.mux.ServeHTTP(w, r)
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"index", "webhook", "delivery", "error"} {
		t := template.New(name).Funcs(funcs)
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html"))
	}
	return pages
}

// assetVersion is a digest of the embedded assets, appended to their URLs
// so that a browser never keeps a stale copy after an upgrade.
func assetVersion() string {
	sum := sha256.New()
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(p)
			sum.Write([]byte(p))
			sum.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(sum.Sum(nil))[:12]
}

// chrome is what every page's frame shows.
type chrome struct {
	Title       string
	Version     string
	AssetV      string
	ConfigError string
	// Self is the page's own address, for the Refresh link.
	Self string
	// Live marks the page as refreshing itself.
	Live bool
	// Find is the text of the search box in the header.
	Find string
}

func (h *Handler) chrome(r *http.Request, title string) chrome {
	c := chrome{Title: title, Version: h.opts.Version, AssetV: h.assetV, Self: r.URL.RequestURI()}
	if h.opts.ConfigError != nil {
		c.ConfigError = h.opts.ConfigError()
	}
	return c
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf strings.Builder
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.log.Error("render page", "page", page, "err", err)
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(buf.String()))
	}
}

// errorPage is the page of a refused or failed request.
type errorPage struct {
	chrome
	Status  int
	Heading string
	Message string
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	h.render(w, r, status, "error", errorPage{chrome: h.chrome(r, heading), Status: status, Heading: heading, Message: msg})
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if r.URL.Query().Get("v") == h.assetV {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// csrfToken is the retry form's token for a delivery: an HMAC of its id
// under a key drawn at start. A page from another site cannot read it, so
// it cannot forge the form.
func (h *Handler) csrfToken(id string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte("retry\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) validToken(id, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(h.csrfToken(id)))
}

func (h *Handler) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil || !h.validToken(id, r.PostForm.Get("csrf")) {
		h.fail(w, r, http.StatusForbidden, "Retry refused",
			"The form had no valid token. Open the delivery page again and press Retry now there.")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), RetryTimeout)
	defer cancel()
	d, err := h.engine.Retry(ctx, id)
	switch {
	case errors.Is(err, delivery.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "No such delivery", fmt.Sprintf("There is no delivery %q; it may have expired from the history.", id))
		return
	case err != nil:
		h.fail(w, r, http.StatusConflict, "Retry not made", err.Error())
		return
	}
	n := d.AttemptCount
	http.Redirect(w, r, fmt.Sprintf("/deliveries/%s?retried=%d#attempt-%d", url.PathEscape(id), n, n), http.StatusSeeOther)
}

// statsCache keeps each webhook's last-hour figures for a few seconds, so
// that several open pages polling every two seconds cost one scan.
type statsCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedStats
}

type cachedStats struct {
	at time.Time
	s  hourStats
}

func newStatsCache(ttl time.Duration) *statsCache {
	return &statsCache{ttl: ttl, m: map[string]cachedStats{}}
}

func (c *statsCache) get(webhook string, now time.Time, compute func() (hourStats, error)) (hourStats, error) {
	c.mu.Lock()
	if e, ok := c.m[webhook]; ok && now.Sub(e.at) < c.ttl && !now.Before(e.at) {
		c.mu.Unlock()
		return e.s, nil
	}
	c.mu.Unlock()
	s, err := compute()
	if err != nil {
		return s, err
	}
	c.mu.Lock()
	c.m[webhook] = cachedStats{at: now, s: s}
	c.mu.Unlock()
	return s, nil
}

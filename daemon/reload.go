package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// watchConfig starts the file watcher that reloads the configuration when
// the file or a drop-in changes.
func (d *Daemon) watchConfig(file string) error {
	w, err := config.Watch(file, config.DefaultDebounce, func() {
		if _, err := d.reload(true); err != nil {
			return // logged and shown by reload
		}
	})
	if err != nil {
		return err
	}
	d.watcher = w
	return nil
}

// configSum is a digest of the configuration's files as they are on disk:
// the main file and every file of webhooks.d. A file that cannot be read
// counts by its error, so that it changing is a change too. Secrets read
// through ${file:...} are not part of it: SIGHUP or `sidehook reload`
// picks those up.
func configSum(file string) string {
	h := sha256.New()
	add := func(name string) {
		io.WriteString(h, name+"\x00")
		f, err := os.Open(name)
		if err != nil {
			io.WriteString(h, "error: "+err.Error())
		} else {
			io.Copy(h, f)
			f.Close()
		}
		h.Write([]byte{0})
	}
	add(file)
	dir := filepath.Join(filepath.Dir(file), config.DropInDir)
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil && !os.IsNotExist(err) {
		io.WriteString(h, "error: "+err.Error())
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.IsDir() {
			continue
		}
		add(filepath.Join(dir, e.Name()))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// handshakeOut is the last handshake with a webhook's URL, as GET
// /v1/webhooks shows it.
type handshakeOut struct {
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
	gen       uint64
}

// handshakes pings, in the background, every webhook of cfg that asks for
// a handshake, and keeps each result for the webhook listing. A result
// from an older load never replaces one from a newer load.
func (d *Daemon) handshakes(cfg *config.Config) {
	if d.bgCtx.Err() != nil {
		return // shutting down
	}
	gen := d.hsGen.Add(1)
	for _, wh := range cfg.Webhooks {
		if !wh.Handshake || wh.Type == config.TypeCommand {
			continue
		}
		d.bg.Add(1)
		go func(wh *config.Webhook) {
			defer d.bg.Done()
			res := d.engine.Ping(d.bgCtx, wh)
			if d.bgCtx.Err() != nil {
				return
			}
			d.recordHandshake(wh.ID, gen, res)
		}(wh)
	}
}

func (d *Daemon) recordHandshake(webhook string, gen uint64, res delivery.PingResult) {
	out := &handshakeOut{Status: res.Status, LatencyMS: res.LatencyMS, Error: res.Error, At: time.Now().UTC(), gen: gen}
	d.hsMu.Lock()
	if prev := d.hs[webhook]; prev != nil && prev.gen > gen {
		d.hsMu.Unlock()
		return
	}
	d.hs[webhook] = out
	d.hsMu.Unlock()
	switch {
	case res.Error != "":
		d.log.Warn("handshake failed", "webhook", webhook, "url", res.URL, "err", res.Error)
	case res.Status < 200 || res.Status > 299:
		d.log.Warn("handshake answered with an error status", "webhook", webhook, "url", res.URL,
			"status_code", res.Status, "latency_ms", res.LatencyMS)
	default:
		d.log.Info("handshake", "webhook", webhook, "url", res.URL, "status_code", res.Status, "latency_ms", res.LatencyMS)
	}
}

// handshake returns a webhook's last handshake, or nil when it asks for
// none or none has answered yet.
func (d *Daemon) handshake(wh *config.Webhook) *handshakeOut {
	if !wh.Handshake {
		return nil
	}
	d.hsMu.Lock()
	defer d.hsMu.Unlock()
	return d.hs[wh.ID]
}

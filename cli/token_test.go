package cli_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestAddrToken(t *testing.T) {
	const token = "tok-7d3c9a1e5b2f0864"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error": "missing or wrong bearer token (set Authorization: Bearer …)"}`))
			return
		}
		w.Write([]byte(`{"ok": true, "webhooks": 3}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	r := sidehook(t, nil, "", "reload", "--addr", addr)
	if r.err == nil || !strings.Contains(r.stderr+errText(r.err), "missing or wrong bearer token (set Authorization: Bearer …); give the daemon's api_token with --token or $SIDEHOOK_API_TOKEN") {
		t.Errorf("without a token: err %v, stderr %q", r.err, r.stderr)
	}
	r = sidehook(t, nil, "", "reload", "--addr", addr, "--token", token)
	wantOutput(t, "stdout with --token", r.stdout, "config reloaded: 3 webhooks\n")
	r = sidehook(t, map[string]string{"SIDEHOOK_API_TOKEN": token}, "", "reload", "--addr", addr)
	wantOutput(t, "stdout with $SIDEHOOK_API_TOKEN", r.stdout, "config reloaded: 3 webhooks\n")
	r = sidehook(t, map[string]string{"SIDEHOOK_API_TOKEN": "wrong-token-000000"}, "", "reload", "--addr", addr, "--token", token)
	wantOutput(t, "stdout with --token over the environment", r.stdout, "config reloaded: 3 webhooks\n")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

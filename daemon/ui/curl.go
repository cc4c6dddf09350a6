package ui

import (
	"slices"
	"strings"

	"github.com/sidehook/sidehook/delivery"
)

// reproduction is a shell command that sends an attempt's request again
// by hand, with notes on what it cannot reproduce.
type reproduction struct {
	Label   string
	Command string
	Notes   []string
}

// reproduce builds the command for a recorded request: curl for an HTTP
// webhook, the program fed its stdin for a command webhook. Headers the
// history shows as redacted stay redacted in the command.
func reproduce(req *delivery.Request) reproduction {
	if len(req.Command) > 0 {
		return reproduceCommand(req)
	}
	var b strings.Builder
	b.WriteString("curl -sS -i -X POST " + shellQuote(req.URL))
	names := make([]string, 0, len(req.Headers))
	for name := range req.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	var redacted []string
	signed := false
	for _, name := range names {
		switch strings.ToLower(name) {
		case "content-length", "host", "accept-encoding":
			continue
		case "webhook-signature":
			signed = true
		}
		v := req.Headers[name]
		if v == "[redacted]" {
			redacted = append(redacted, name)
		}
		b.WriteString(" \\\n  -H " + shellQuote(name+": "+v))
	}
	b.WriteString(" \\\n  --data-binary " + shellQuote(req.Body))
	r := reproduction{Label: "Reproduce with curl", Command: b.String()}
	if len(redacted) > 0 {
		r.Notes = append(r.Notes, "Header "+strings.Join(redacted, ", ")+" is shown as [redacted]: the history never keeps secrets. "+
			"Put the real value from your configuration in its place before you run the command.")
	}
	if signed {
		r.Notes = append(r.Notes, "The webhook-signature was made for that attempt's timestamp; a receiver that checks "+
			"timestamps refuses it after a few minutes. A Retry now signs afresh.")
	}
	return r
}

func reproduceCommand(req *delivery.Request) reproduction {
	argv := make([]string, len(req.Command))
	for i, a := range req.Command {
		argv[i] = shellQuote(a)
	}
	cmd := "printf '%s' " + shellQuote(req.Body) + " |\n  " + strings.Join(argv, " ")
	return reproduction{
		Label:   "Reproduce in a shell",
		Command: cmd,
		Notes: []string{"sidehook also sets SIDEHOOK_WEBHOOK, SIDEHOOK_DELIVERY, SIDEHOOK_EVENT_TYPE, SIDEHOOK_ATTEMPT, " +
			"SIDEHOOK_CONTENT_TYPE and the webhook's env, and runs the program in its workdir."},
	}
}

// shellQuote quotes s for a POSIX shell: single quotes, with each single
// quote inside closed, escaped and reopened.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

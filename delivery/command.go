package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// commandWaitDelay is how long Wait waits, after the program has exited
// or been killed, for its standard output and error to be closed. A
// child the program left behind can hold them open; after this the pipes
// are closed and what was read so far is kept.
const commandWaitDelay = 2 * time.Second

// commandSender runs a webhook's program with the body on its standard
// input (type: command).
//
// The program is started from its argv, never through a shell, in its
// own process group, with an environment made only of the SIDEHOOK_*
// metadata and the webhook's env: nothing is inherited from the daemon,
// not even PATH or HOME, so the daemon's secrets reach a program only
// when its webhook names them. Its standard output and error are read to
// MaxResponseBody each and the rest is discarded as it comes, so a
// talkative program neither blocks nor grows the daemon's memory. When
// the timeout passes or the daemon stops, the whole process group is
// killed; when the program exits, whatever it left running in its
// process group is killed too, so no invocation leaves processes behind
// (a program that means to start a long-lived service must start it in
// its own session).
type commandSender struct{}

func newCommandSender() *commandSender { return &commandSender{} }

// commandEnv returns the program's environment, and the same as history
// records it: the SIDEHOOK_* values as they are and the values of the
// webhook's env as "[redacted]" (they are often secrets from ${VAR}).
// The SIDEHOOK_* variables come last so that env cannot override them.
func commandEnv(m *Message) (env []string, recorded map[string]string) {
	wh := m.Webhook
	recorded = map[string]string{}
	names := make([]string, 0, len(wh.Env))
	for name := range wh.Env {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		env = append(env, name+"="+wh.Env[name])
		recorded[name] = "[redacted]"
	}
	for _, kv := range [][2]string{
		{"SIDEHOOK_WEBHOOK", wh.ID},
		{"SIDEHOOK_DELIVERY", m.Delivery},
		{"SIDEHOOK_EVENT_TYPE", m.EventType},
		{"SIDEHOOK_ATTEMPT", strconv.Itoa(m.N)},
		{"SIDEHOOK_CONTENT_TYPE", wh.ContentType},
	} {
		env = append(env, kv[0]+"="+kv[1])
		recorded[kv[0]] = kv[1]
	}
	return env, recorded
}

func (c *commandSender) send(ctx context.Context, m *Message) outcome {
	wh := m.Webhook
	at := time.Now()
	env, recorded := commandEnv(m)
	rec := &Request{Command: slices.Clone(wh.Command), Headers: recorded, Body: string(m.Body)}
	oc := outcome{attempt: Attempt{At: at, Manual: m.Manual, Request: rec}}
	if len(wh.Command) == 0 {
		oc.attempt.Error = "webhook has no command to run"
		oc.permanent = true
		return oc
	}

	runCtx, cancel := context.WithTimeout(ctx, wh.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, wh.Command[0], wh.Command[1:]...)
	// Env is never nil here (the SIDEHOOK_* variables are always set), so
	// nothing of the daemon's own environment is passed on.
	cmd.Env = env
	cmd.Dir = wh.Workdir
	cmd.Stdin = bytes.NewReader(m.Body)
	stdout := &cappedBuffer{limit: MaxResponseBody}
	stderr := &cappedBuffer{limit: MaxResponseBody}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = commandWaitDelay

	if err := cmd.Start(); err != nil {
		oc.attempt.DurationMS = ms(time.Since(at))
		oc.attempt.Error = fmt.Sprintf("start %s: %v", wh.Command[0], err)
		return oc
	}
	err := cmd.Wait()
	// Whatever the program left in its group goes with it. The group id
	// stays taken while any member lives, so this reaches only them.
	killGroup(cmd)
	oc.attempt.DurationMS = ms(time.Since(at))

	out := stdout.buf.Bytes()
	if stdout.truncated {
		out = trimPartialRune(out)
	}
	r := &Response{Status: -1, Headers: map[string]string{}, Body: string(out), Truncated: stdout.truncated}
	oc.attempt.Response = r
	if st := cmd.ProcessState; st != nil {
		r.Status = st.ExitCode()
	}

	if cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Exit status 0 is success, even when a child left behind kept
		// the output open past commandWaitDelay (err is ErrWaitDelay) or
		// the deadline passed while waiting for it.
		oc.ok = true
		return oc
	}
	var reason string
	switch {
	case ctx.Err() != nil:
		reason = "canceled: sidehook was stopping; process group killed"
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		reason = fmt.Sprintf("timeout after %s: process group killed", wh.Timeout)
	case cmd.ProcessState == nil:
		reason = fmt.Sprintf("wait for %s: %v", wh.Command[0], err)
	default:
		reason = describeExit(cmd.ProcessState)
	}
	oc.attempt.Error = reason
	if stderr.buf.Len() > 0 {
		msg := string(stderr.buf.Bytes())
		if stderr.truncated {
			msg = string(trimPartialRune(stderr.buf.Bytes())) + " [stderr truncated at 64 KiB]"
		}
		oc.attempt.Error = reason + "; stderr: " + strings.TrimRight(msg, "\n")
	}
	return oc
}

// describeExit says how a program that did not succeed ended.
func describeExit(st *os.ProcessState) string {
	if w, ok := st.Sys().(syscall.WaitStatus); ok && w.Signaled() {
		return fmt.Sprintf("killed by signal %d (%s)", int(w.Signal()), w.Signal())
	}
	return fmt.Sprintf("exit status %d", st.ExitCode())
}

// killGroup sends SIGKILL to the process group of a started command.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// cappedBuffer keeps the first limit bytes written to it and discards the
// rest, always reporting a full write so the writer is never blocked.
type cappedBuffer struct {
	buf       bytes.Buffer
	limit     int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
		if len(p) > room {
			b.truncated = true
		}
	} else if len(p) > 0 {
		b.truncated = true
	}
	return len(p), nil
}

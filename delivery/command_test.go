package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
)

// script writes a /bin/sh program into dir and returns its path. The
// program runs with no PATH, so it calls other programs by absolute path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// commandHook is hook for a type: command webhook running argv.
func commandHook(id string, argv []string, events ...string) *config.Webhook {
	wh := hook(id, "", events...)
	wh.Type = config.TypeCommand
	wh.Command = argv
	return wh
}

// recorder is a program that writes its stdin, its environment (as it
// was given to it, NUL-separated) and its working directory to files named
// after the attempt, then exits with the status in the file "status.N"
// when there is one, else 0.
func recorder(t *testing.T, dir string) string {
	return script(t, dir, "record.sh", `d=`+dir+`
n=$SIDEHOOK_ATTEMPT
/usr/bin/cat > "$d/stdin.$n"
/usr/bin/cat /proc/$$/environ > "$d/env.$n"
/bin/pwd > "$d/pwd.$n"
echo "recorded attempt $n"
if [ -f "$d/status.$n" ]; then
  echo "attempt $n fails on purpose" >&2
  exit $(/usr/bin/cat "$d/status.$n")
fi
exit 0`)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// environ reads an environment recorded from /proc/PID/environ.
func environ(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimRight(readFile(t, path), "\x00"), "\x00") {
		name, value, _ := strings.Cut(kv, "=")
		env[name] = value
	}
	return env
}

// alive reports whether a process exists and is not a zombie (the init
// of a container may never reap an orphan).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// waitGone fails unless the process recorded in pidFile is gone within a
// second.
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file %s: %q", pidFile, readFile(t, pidFile))
	}
	deadline := time.Now().Add(time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCommand_StdinAndEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	work := t.TempDir()
	wh := commandHook("crm-sync", []string{recorder(t, dir), "--mode", "lead"}, "Lead_Post_Create")
	wh.Env = map[string]string{"CRM_TOKEN": "s3cret", "CRM_REGION": "eu"}
	wh.Workdir = work
	e := openEngine(t, t.TempDir(), testConfig(wh))

	data := `{"ProspectID": "4711",  "Amount": 12.50, "FirstName":"Ada"}`
	acc := ingest(t, e, "Lead Creation", "", data)
	id := acc.Deliveries[0].ID
	d := waitStatus(t, e, id, StatusSuccess)

	if got := readFile(t, filepath.Join(dir, "stdin.1")); got != data {
		t.Errorf("stdin = %q, want the JSON body byte for byte %q", got, data)
	}
	env := environ(t, filepath.Join(dir, "env.1"))
	want := map[string]string{
		"SIDEHOOK_WEBHOOK": "crm-sync", "SIDEHOOK_DELIVERY": id, "SIDEHOOK_EVENT_TYPE": "Lead_Post_Create",
		"SIDEHOOK_ATTEMPT": "1", "SIDEHOOK_CONTENT_TYPE": "application/json",
		"CRM_TOKEN": "s3cret", "CRM_REGION": "eu",
	}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Errorf("environment = %v, want exactly %v (nothing from the daemon: no PATH, HOME)", env, want)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "pwd.1"))); got != work {
		t.Errorf("working directory = %q, want workdir %q", got, work)
	}

	if len(d.Attempts) != 1 {
		t.Fatalf("attempts = %+v, want one", d.Attempts)
	}
	a := d.Attempts[0]
	if a.Request == nil || !slices.Equal(a.Request.Command, wh.Command) || a.Request.Body != data || a.Request.URL != "" {
		t.Errorf("recorded request = %+v, want the argv and the body", a.Request)
	}
	if h := a.Request.Headers; h["CRM_TOKEN"] != "[redacted]" || h["CRM_REGION"] != "[redacted]" || h["SIDEHOOK_DELIVERY"] != id || h["SIDEHOOK_ATTEMPT"] != "1" {
		t.Errorf("recorded environment = %v, want env values redacted and SIDEHOOK_* shown", h)
	}
	if a.Response == nil || a.Response.Status != 0 || a.Response.Body != "recorded attempt 1\n" || a.Response.Truncated {
		t.Errorf("recorded response = %+v, want exit status 0 and the standard output", a.Response)
	}
	if a.Error != "" || a.DurationMS <= 0 {
		t.Errorf("error %q duration %v, want no error and a duration", a.Error, a.DurationMS)
	}
}

func TestCommand_RetriesCountAttempts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "status.1"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(dir, "status.2"), []byte("3"), 0o644)
	wh := commandHook("crm-sync", []string{recorder(t, dir)}, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	data := `{"n":1}`
	acc := ingest(t, e, "Lead Creation", "", data)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if len(d.Attempts) != 3 {
		t.Fatalf("attempts = %+v, want 3", d.Attempts)
	}
	for i, want := range []int{1, 3, 0} {
		n := i + 1
		if got := environ(t, filepath.Join(dir, fmt.Sprintf("env.%d", n)))["SIDEHOOK_ATTEMPT"]; got != strconv.Itoa(n) {
			t.Errorf("attempt %d: SIDEHOOK_ATTEMPT = %q", n, got)
		}
		if got := readFile(t, filepath.Join(dir, fmt.Sprintf("stdin.%d", n))); got != data {
			t.Errorf("attempt %d: stdin = %q, want %q", n, got, data)
		}
		a := d.Attempts[i]
		if a.Response == nil || a.Response.Status != want {
			t.Errorf("attempt %d: response %+v, want exit status %d", n, a.Response, want)
		}
		if want != 0 && a.Error != fmt.Sprintf("exit status %d; stderr: attempt %d fails on purpose", want, n) {
			t.Errorf("attempt %d: error = %q", n, a.Error)
		}
	}
}

func TestCommand_ExitOneFailsAfterRetriesWithStderr(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := script(t, dir, "fail.sh", `echo partial output
echo "crm said no" >&2
exit 1`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if len(d.Attempts) != wh.Retry.Attempts {
		t.Fatalf("attempts = %d, want %d", len(d.Attempts), wh.Retry.Attempts)
	}
	for _, a := range d.Attempts {
		if a.Response == nil || a.Response.Status != 1 || a.Response.Body != "partial output\n" {
			t.Errorf("attempt %d response = %+v, want exit status 1 with the output", a.N, a.Response)
		}
		if a.Error != "exit status 1; stderr: crm said no" {
			t.Errorf("attempt %d error = %q, want the exit status and stderr", a.N, a.Error)
		}
	}
	if d.LastError != "exit status 1; stderr: crm said no" {
		t.Errorf("last error = %q", d.LastError)
	}
}

func TestCommand_KilledBySignalIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := script(t, dir, "crash.sh", `kill -9 $$`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	wh.Retry.Attempts = 1
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	a := d.Attempts[0]
	if a.Response == nil || a.Response.Status != -1 || a.Error != "killed by signal 9 (killed)" {
		t.Errorf("attempt = response %+v error %q, want status -1 and killed by signal 9", a.Response, a.Error)
	}
}

func TestCommand_TimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := script(t, dir, "hang.sh", `/usr/bin/sleep 60 &
echo $! > `+dir+`/grandchild
echo started
/usr/bin/sleep 60`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	wh.Timeout = 300 * time.Millisecond
	wh.Retry.Attempts = 1
	e := openEngine(t, t.TempDir(), testConfig(wh))

	start := time.Now()
	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the failure took %s, want about the 300ms timeout", took)
	}
	a := d.Attempts[0]
	if a.Error != "timeout after 300ms: process group killed" {
		t.Errorf("error = %q, want a timeout", a.Error)
	}
	if a.Response == nil || a.Response.Status != -1 || a.Response.Body != "started\n" {
		t.Errorf("response = %+v, want status -1 and the output so far", a.Response)
	}
	waitGone(t, filepath.Join(dir, "grandchild"))
}

func TestCommand_ChildHoldingOutputOpenDoesNotBlock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The grandchild keeps standard output open after the program exits 0.
	prog := script(t, dir, "fork.sh", `/usr/bin/sleep 60 &
echo $! > `+dir+`/grandchild
echo done`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	e := openEngine(t, t.TempDir(), testConfig(wh))

	start := time.Now()
	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if took := time.Since(start); took > commandWaitDelay+3*time.Second {
		t.Errorf("the attempt took %s, want at most about %s", took, commandWaitDelay)
	}
	if a := d.Attempts[0]; a.Response == nil || a.Response.Status != 0 || a.Response.Body != "done\n" {
		t.Errorf("response = %+v, want exit status 0 and its output", a.Response)
	}
	waitGone(t, filepath.Join(dir, "grandchild"))
}

func TestCommand_BatchIsOneInvocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wh := commandHook("activity", []string{recorder(t, dir)}, "LeadActivity_Post_Create")
	wh.BatchOff = false
	wh.Batch = &config.Batch{Window: 200 * time.Millisecond, Max: 100}
	e := openEngine(t, t.TempDir(), testConfig(wh))

	a1 := ingest(t, e, "Lead Activity Creation", "", `{"a":1}`)
	a2 := ingest(t, e, "Lead Activity Creation", "", `{"a": 2}`)
	if a1.Deliveries[0].ID != a2.Deliveries[0].ID {
		t.Fatalf("deliveries %s and %s, want one batch", a1.Deliveries[0].ID, a2.Deliveries[0].ID)
	}
	waitStatus(t, e, a1.Deliveries[0].ID, StatusSuccess)
	if got, want := readFile(t, filepath.Join(dir, "stdin.1")), `[{"a":1},{"a": 2}]`; got != want {
		t.Errorf("stdin = %q, want the batch as one JSON array %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "stdin.2")); err == nil {
		t.Errorf("the program ran twice, want one invocation for the batch")
	}
}

func TestCommand_FormBody(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wh := commandHook("crm-sync", []string{recorder(t, dir)}, "Lead_Post_Create")
	wh.ContentType = config.ContentForm
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"FirstName":"Ada Lovelace","Amount":12.50}`)
	waitStatus(t, e, acc.Deliveries[0].ID, StatusSuccess)
	if got, want := readFile(t, filepath.Join(dir, "stdin.1")), "FirstName=Ada+Lovelace&Amount=12.50"; got != want {
		t.Errorf("stdin = %q, want the form body %q", got, want)
	}
	if got := environ(t, filepath.Join(dir, "env.1"))["SIDEHOOK_CONTENT_TYPE"]; got != config.ContentForm {
		t.Errorf("SIDEHOOK_CONTENT_TYPE = %q, want %q", got, config.ContentForm)
	}
}

func TestCommand_HugeOutputIsBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := script(t, dir, "loud.sh", `/usr/bin/head -c 1048576 /dev/zero | /usr/bin/tr '\0' o
/usr/bin/head -c 1048576 /dev/zero | /usr/bin/tr '\0' e >&2
exit 2`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	wh.Retry.Attempts = 1
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	a := d.Attempts[0]
	if a.Response == nil || len(a.Response.Body) != MaxResponseBody || !a.Response.Truncated || a.Response.Status != 2 {
		t.Fatalf("response: %d bytes truncated %v status %v, want %d bytes truncated, exit status 2",
			len(a.Response.Body), a.Response.Truncated, a.Response.Status, MaxResponseBody)
	}
	prefix := "exit status 2; stderr: "
	suffix := " [stderr truncated at 64 KiB]"
	if !strings.HasPrefix(a.Error, prefix) || !strings.HasSuffix(a.Error, suffix) || len(a.Error) != len(prefix)+MaxResponseBody+len(suffix) {
		t.Errorf("error is %d bytes starting %.40q, want the exit status and 64 KiB of stderr marked truncated", len(a.Error), a.Error)
	}
}

func TestCommand_MissingProgramIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	wh := commandHook("crm-sync", []string{filepath.Join(t.TempDir(), "gone")}, "Lead_Post_Create")
	wh.Retry.Attempts = 2
	e := openEngine(t, t.TempDir(), testConfig(wh))

	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	d := waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	if len(d.Attempts) != 2 || !strings.HasPrefix(d.Attempts[0].Error, "start "+wh.Command[0]+": ") {
		t.Errorf("attempts = %+v, want 2 failed starts", d.Attempts)
	}
}

func TestCommand_FinalFailureNotifies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := script(t, dir, "fail.sh", `exit 1`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	wh.Retry.Attempts = 2
	wh.NotifyOnFailure = true
	notices := t.TempDir()
	cfg := testConfig(wh)
	cfg.Notify = &config.Notify{Command: []string{recorder(t, notices)}, Timeout: 5 * time.Second, Window: 100 * time.Millisecond}
	e := openEngine(t, t.TempDir(), cfg)

	acc := ingest(t, e, "Lead Creation", "", `{"n":1}`)
	waitStatus(t, e, acc.Deliveries[0].ID, StatusFailure)
	path := filepath.Join(notices, "stdin.1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		// env.1 is written once stdin.1 is complete.
		if _, err := os.Stat(filepath.Join(notices, "env.1")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failure notice was run")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n Notice
	if err := json.Unmarshal([]byte(readFile(t, path)), &n); err != nil {
		t.Fatalf("notice on stdin is not JSON: %v", err)
	}
	if n.Webhook != "crm-sync" || n.Count != 1 || len(n.Failures) != 1 || n.Failures[0].Delivery != acc.Deliveries[0].ID || n.Failures[0].Attempts != 2 {
		t.Errorf("notice = %+v, want one failure of crm-sync after 2 attempts", n)
	}
}

func TestCommand_ShutdownKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The first run hangs with a grandchild; the run after the restart
	// succeeds.
	prog := script(t, dir, "slow.sh", `if [ -f `+dir+`/ran ]; then exit 0; fi
: > `+dir+`/ran
/usr/bin/sleep 60 &
echo $! > `+dir+`/grandchild.tmp
/usr/bin/mv `+dir+`/grandchild.tmp `+dir+`/grandchild
/usr/bin/sleep 60`)
	wh := commandHook("crm-sync", []string{prog}, "Lead_Post_Create")
	wh.Timeout = 30 * time.Second
	cfg := testConfig(wh)
	data := t.TempDir()

	e1, close1 := startEngine(t, data, cfg)
	acc := ingest(t, e1, "Lead Creation", "", `{"n":1}`)
	id := acc.Deliveries[0].ID
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "grandchild")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	grace, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	close1(grace)
	cancel()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("close took %s with a program running, want about the 100ms grace", took)
	}
	waitGone(t, filepath.Join(dir, "grandchild"))

	e2 := openEngine(t, data, cfg)
	d := waitStatus(t, e2, id, StatusSuccess)
	for _, a := range d.Attempts {
		if a.Error != "" {
			t.Errorf("attempt %d recorded %q; the attempt cut by shutdown should not be recorded", a.N, a.Error)
		}
	}
}

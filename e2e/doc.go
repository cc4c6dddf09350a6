// Package e2e holds black-box tests of the built sidehook binary: they run
// it as a subprocess on a temporary data directory, post events to its Unix
// socket, receive its webhooks on a real HTTP server, and check what a user
// relies on — nothing acknowledged with 202 is lost by kill -9 or a restart,
// SIGTERM stops it cleanly, and idempotency keys survive a restart.
//
// The tests build the binary once (or use $SIDEHOOK_BIN) and are skipped
// under -short. The crash test kills the daemon $SIDEHOOK_CRASH_KILLS times
// (default 5):
//
//	go test -race ./e2e/
//	SIDEHOOK_CRASH_KILLS=25 go test -run Crash -v ./e2e/
package e2e

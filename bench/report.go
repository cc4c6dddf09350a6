package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// row is one figure: sidehook's value, the baseline's when there is one,
// and sidehook / baseline.
type row struct {
	Mode     string   `json:"mode"`
	Figure   string   `json:"figure"`
	Unit     string   `json:"unit"`
	Sidehook float64  `json:"sidehook"`
	Baseline *float64 `json:"baseline"`
	Ratio    *float64 `json:"ratio"`
}

// newRow builds a row with a baseline.
func newRow(mode, figure, unit string, sidehook, baseline float64) row {
	r := row{Mode: mode, Figure: figure, Unit: unit, Sidehook: sidehook, Baseline: &baseline}
	if baseline != 0 {
		ratio := sidehook / baseline
		r.Ratio = &ratio
	}
	return r
}

// soloRow builds a row that has no baseline.
func soloRow(mode, figure, unit string, sidehook float64) row {
	return row{Mode: mode, Figure: figure, Unit: unit, Sidehook: sidehook}
}

// results is what --json writes.
type results struct {
	Machine machine `json:"machine"`
	Rows    []row   `json:"results"`
}

func (r results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// printTable prints the rows as an aligned table: names left, numbers
// right.
func printTable(w io.Writer, rows []row) {
	cells := [][]string{{"figure", "unit", "sidehook", "baseline", "ratio"}}
	for _, r := range rows {
		base, ratio := "-", "-"
		if r.Baseline != nil {
			base = num(*r.Baseline)
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2fx", *r.Ratio)
		}
		cells = append(cells, []string{r.Mode + ": " + r.Figure, r.Unit, num(r.Sidehook), base, ratio})
	}
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	for _, c := range cells {
		var b strings.Builder
		for i, s := range c {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if i < 2 {
				b.WriteString(s + pad + "  ")
			} else {
				b.WriteString("  " + pad + s)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// num formats a figure with a precision that suits its size.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// machine describes where the figures were measured.
type machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Go      string `json:"go"`
	Kernel  string `json:"kernel"`
	DataDir string `json:"data_dir"`
	DataFS  string `json:"data_fs"`
	// FsyncP50 and FsyncP99 time a 1 KiB append plus fsync on the data
	// directory, in milliseconds: the floor under every 202.
	FsyncP50 float64 `json:"fsync_p50_ms"`
	FsyncP99 float64 `json:"fsync_p99_ms"`
	Time     string  `json:"time"`
}

func (m machine) String() string {
	return fmt.Sprintf("machine: %s, %d cores, %s, linux %s\ndata:    %s (%s; 1 KiB append+fsync p50 %.2f ms, p99 %.2f ms)\ntime:    %s",
		m.CPU, m.Cores, m.Go, m.Kernel, m.DataDir, m.DataFS, m.FsyncP50, m.FsyncP99, m.Time)
}

// timeFsync appends 1 KiB and fsyncs, 200 times, in a file under dir, and
// returns the p50 and p99 in milliseconds.
func timeFsync(dir string) (p50, p99 float64, err error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, 0, fmt.Errorf("create fsync probe: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1024)
	var d []time.Duration
	for range 200 {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0, fmt.Errorf("write fsync probe: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("fsync probe: %w", err)
		}
		d = append(d, time.Since(t0))
	}
	p50, p99, _ = latencies(d)
	return p50, p99, nil
}

func describeMachine(dataDir string) machine {
	m := machine{
		CPU:     "unknown",
		Cores:   runtime.NumCPU(),
		Go:      runtime.Version(),
		Kernel:  "unknown",
		DataDir: dataDir,
		DataFS:  fsType(dataDir),
		Time:    time.Now().UTC().Format(time.RFC3339),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if p50, p99, err := timeFsync(dataDir); err == nil {
		m.FsyncP50, m.FsyncP99 = p50, p99
	}
	return m
}

// fsType names the file system holding dir; fsync costs differ widely
// between them (tmpfs makes it free).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown: " + err.Error()
	}
	names := map[int64]string{
		0xEF53:     "ext4",
		0x58465342: "xfs",
		0x9123683E: "btrfs",
		0x01021994: "tmpfs",
		0x794C7630: "overlayfs",
		0x2FC12FC1: "zfs",
		0x6969:     "nfs",
		0x65735546: "fuse",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("fs magic 0x%x", st.Type)
}

// clockTicks returns the kernel's USER_HZ, the unit of /proc/PID/stat
// times (100 on every mainstream Linux; getconf confirms it when present).
func clockTicks(ctx context.Context) int64 {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// procUsage is one process's CPU time and memory, read from /proc.
type procUsage struct {
	cpu  time.Duration // utime + stime
	hwm  int64         // peak resident set, bytes (VmHWM)
	rss  int64         // resident set now, bytes (VmRSS)
	anon int64         // of which anonymous memory (RssAnon), not mapped files
}

// readProc reads pid's CPU time and memory.
func readProc(pid int, clkTck int64) (procUsage, error) {
	var u procUsage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	// The command name in parentheses may hold spaces; fields count from
	// after it: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return u, fmt.Errorf("parse stat of pid %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("parse stat of pid %d: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("parse stat of pid %d: utime %q stime %q", pid, f[11], f[12])
	}
	u.cpu = time.Duration((utime + stime) * int64(time.Second) / clkTck)

	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS" && k != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return u, fmt.Errorf("parse %s of pid %d: %w", k, pid, err)
		}
		switch k {
		case "VmHWM":
			u.hwm = kb * 1024
		case "VmRSS":
			u.rss = kb * 1024
		case "RssAnon":
			u.anon = kb * 1024
		}
	}
	return u, nil
}

// percentile returns the p-th percentile (0-100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// latencies sorts d and returns its p50, p99 and max in milliseconds.
func latencies(d []time.Duration) (p50, p99, mx float64) {
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	if len(d) == 0 {
		return 0, 0, 0
	}
	return ms(percentile(d, 50)), ms(percentile(d, 99)), ms(d[len(d)-1])
}

// perEventMicros is CPU microseconds per event.
func perEventMicros(cpu time.Duration, events int64) float64 {
	if events <= 0 {
		return 0
	}
	return float64(cpu) / float64(time.Microsecond) / float64(events)
}

// mib converts bytes to MiB.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// storeSeries are the daemon's write-amplification counters.
var storeSeries = []string{"sidehook_store_commits_total", "sidehook_store_syncs_total", "sidehook_store_writes_total"}

// storeCounters reads the daemon's write-amplification counters; a
// failure leaves the map empty and is logged, since they only explain
// the other figures.
func (b *bench) storeCounters(ctx context.Context, d *daemon) map[string]float64 {
	m, err := d.metrics(ctx, storeSeries...)
	if err != nil {
		b.logf("store counters: %v", err)
	}
	return m
}

// amplificationRows turns the counters before and after a run of n
// events into commits, fsyncs and keys written per event.
func amplificationRows(mode string, before, after map[string]float64, n int64) []row {
	per := func(name string) float64 {
		if n <= 0 {
			return 0
		}
		return (after[name] - before[name]) / float64(n)
	}
	return []row{
		soloRow(mode, "store commits", "per event", per("sidehook_store_commits_total")),
		soloRow(mode, "store fsyncs", "per event", per("sidehook_store_syncs_total")),
		soloRow(mode, "store keys written", "per event", per("sidehook_store_writes_total")),
	}
}

package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// table writes aligned columns; call flush when done.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row adds one line. Tabs and newlines in cells are replaced by spaces so
// they cannot break the alignment.
func (t *table) row(cells ...string) {
	flat := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
	for i, c := range cells {
		cells[i] = flat.Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// timeLayout is how times are shown to people, in local time.
const timeLayout = "2006-01-02 15:04:05"

// localTime formats t in local time, or "-" for the zero time.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeLayout)
}

// millis formats a duration given in milliseconds with a precision that
// suits its size: 237µs, 12.3ms, 1.234s.
func millis(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// statusWord is how people see a delivery status.
func statusWord(s string) string {
	switch s {
	case "in_queue":
		return "In Queue"
	case "success":
		return "Success"
	case "failure":
		return "Failure"
	}
	return s
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// plural returns a count with its noun: "1 webhook", "2 webhooks".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// yesNo shows a boolean to people.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

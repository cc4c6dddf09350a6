package config

import (
	"cmp"
	"slices"
	"strings"
)

// Error is one problem in a configuration file. It formats as
// FILE:LINE:COL: message, the form editors and CI logs link to.
type Error struct {
	Pos Pos
	Msg string
}

// Error returns the problem as FILE:LINE:COL: message (FILE: message when
// the problem has no line, such as an unreadable webhooks.d folder). Line
// breaks in the message, which can come from a value in the file, are
// written as \n so that each problem stays on one line.
func (e *Error) Error() string {
	msg := strings.ReplaceAll(strings.ReplaceAll(e.Msg, "\r", `\r`), "\n", `\n`)
	if e.Pos.Line == 0 {
		return e.Pos.File + ": " + msg
	}
	return e.Pos.String() + ": " + msg
}

// Errors is every problem Load found, sorted by file (the main file first,
// then webhooks.d/ in name order), line and column. Load returns it as its
// error; callers get it with errors.As(err, &config.Errors{}).
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, so errors.As finds an *Error too.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// sortErrors orders es by file (in the order given by files; a file not in
// it goes last), then line and column. Problems at the same position keep
// the order they were found in.
func sortErrors(es Errors, files []string) {
	rank := func(file string) int {
		if i := slices.Index(files, file); i >= 0 {
			return i
		}
		return len(files)
	}
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(rank(a.Pos.File), rank(b.Pos.File)),
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
}

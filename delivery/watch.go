package delivery

import "sync"

// watches let a delivery read once serve twice: a dispatcher reads it
// ahead for the attempt, and the writer records the attempt's outcome on
// it without reading it again. A watch is taken before the read; every
// commit that writes the record after that marks it changed, and the
// reader reads again. A record staged by an earlier op of the same group
// is not yet committed, so the writer looks at its group for that (see
// wtx.seenRecord).
type watches struct {
	mu sync.Mutex
	m  map[string]*watched
}

type watched struct {
	refs    int
	changes uint64
}

// seen is a delivery record as an attempt read it, with its watch.
type seen struct {
	id      string
	rec     *record // nil until the read found the delivery
	w       *watched
	changes uint64
}

// watch starts watching id's record; the caller reads it after this and
// must call unwatch when done with it.
func (ws *watches) watch(id string) *seen {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]*watched{}
	}
	w := ws.m[id]
	if w == nil {
		w = &watched{}
		ws.m[id] = w
	}
	w.refs++
	return &seen{id: id, w: w, changes: w.changes}
}

func (ws *watches) unwatch(s *seen) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if s.w.refs--; s.w.refs == 0 {
		delete(ws.m, s.id)
	}
}

// changed reports whether a commit wrote the record since it was read.
func (ws *watches) changed(s *seen) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return s.w.changes != s.changes
}

// committed marks the watched records among ids as changed. The writer
// calls it after each commit, before it runs the next group's ops.
func (ws *watches) committed(ids map[string]struct{}) {
	if len(ids) == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for id := range ids {
		if w := ws.m[id]; w != nil {
			w.changes++
		}
	}
}

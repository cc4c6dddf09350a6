package daemon

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// tooDeep reports whether the valid JSON value b nests objects and arrays
// more than limit levels deep. Most events open fewer brackets in all than
// the limit, which a fast count shows without walking the value.
func tooDeep(b []byte, limit int) bool {
	if bytes.Count(b, []byte{'{'})+bytes.Count(b, []byte{'['}) <= limit {
		return false
	}
	return jsonDepth(b) > limit
}

// jsonDepth returns how deeply the valid JSON value b nests objects and
// arrays: 0 for a scalar, 1 for {"a":1} or [1], 2 for {"a":[1]}. It is one
// pass over the bytes with no allocation, so checking limits.max_depth
// costs far less than the decode that came before it.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// maxTurningAway bounds the connections over the limit being answered at
// once; past it, more are closed without an answer.
const maxTurningAway = 64

// turnAwayTime bounds how long a connection over the limit is kept to
// read its request and answer it.
const turnAwayTime = time.Second

// limitListener serves at most a fixed number of connections at once
// (limits.max_connections). A connection over the limit is answered 429
// Too Many Requests and closed, so its client learns why instead of
// waiting in the listen backlog, as with netutil.LimitListener.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	turning chan struct{}
	answer  string
}

// limitListen wraps l to serve at most n connections at once.
func limitListen(l net.Listener, n int) net.Listener {
	body := fmt.Sprintf(`{"error":"too many connections: the limit is %d at once on this listener (limits.max_connections); retry shortly"}`+"\n", n)
	return &limitListener{
		Listener: l,
		slots:    make(chan struct{}, n),
		turning:  make(chan struct{}, maxTurningAway),
		answer: "HTTP/1.1 429 Too Many Requests\r\n" +
			"Content-Type: application/json\r\n" +
			"Retry-After: 1\r\n" +
			"Connection: close\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body,
	}
}

// Accept returns the next connection within the limit, turning away those
// over it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.turnAway(c)
		}
	}
}

// turnAway answers a connection over the limit with 429 and closes it.
// It reads the start of the request first: an HTTP client may take an
// answer that comes before its request for a broken connection.
func (l *limitListener) turnAway(c net.Conn) {
	select {
	case l.turning <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.turning }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(turnAwayTime))
		var buf [4096]byte
		c.Read(buf[:])
		if _, err := io.WriteString(c, l.answer); err != nil {
			return
		}
		// Close the sending side and drain what the client still
		// sends, so that closing does not reset the connection before
		// the client has read the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 1<<20))
	}()
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Package tcpproxy is a loopback TCP proxy for fault-injection tests: it
// passes bytes through, stalls them, drops the replies, or cuts every
// connection, on command.
package tcpproxy

import (
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does with the bytes it carries.
type Mode int

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Stall holds bytes both ways (TCP keeps them buffered) until the mode
	// changes, like a network that stopped delivering without a reset.
	Stall
	// DropReplies forwards requests to the server and discards its replies.
	DropReplies
)

// Proxy forwards connections from its own address to a target.
// Close stops it and waits for every goroutine it started.
type Proxy struct {
	target string
	lis    net.Listener
	wg     sync.WaitGroup

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced when mode changes
	conns   map[net.Conn]struct{}
	closed  bool
}

// New starts a proxy to target on a free loopback port.
func New(target string) (*Proxy, error) { return NewOn("127.0.0.1:0", target) }

// NewOn starts a proxy to target listening on addr ("host:port", port 0 for
// a free one), for clients that cannot reach the target directly, such as
// processes in a network namespace.
func NewOn(addr, target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, lis: lis, changed: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's address, to give clients instead of the target.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// SetMode changes what the proxy does from now on.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
}

// Cut closes every connection the proxy carries now. New ones are accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops the proxy, closes its connections and waits for its
// goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.lis.Close()
	p.Cut()
	p.SetMode(Pass) // wake stalled copiers
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.conns[s] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.copy(s, c, false)
		go p.copy(c, s, true)
	}
}

// copy moves bytes from src to dst as the mode says. reply is true for the
// server-to-client direction.
func (p *Proxy) copy(dst, src net.Conn, reply bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		if !p.waitWhileStalled() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitWhileStalled() {
				return
			}
			if !(reply && p.currentMode() == DropReplies) {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) currentMode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// waitWhileStalled blocks while the mode is Stall. It returns false if the
// proxy closed.
func (p *Proxy) waitWhileStalled() bool {
	for {
		p.mu.Lock()
		m, ch, closed := p.mode, p.changed, p.closed
		p.mu.Unlock()
		if closed {
			return false
		}
		if m != Stall {
			return true
		}
		<-ch
	}
}

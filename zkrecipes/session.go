package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Config configures a Session.
type Config struct {
	// Servers are the ZooKeeper servers, "host:port" each.
	Servers []string
	// SessionTimeout is the session timeout asked of ZooKeeper. Default 10 s.
	// If ZooKeeper grants a shorter one, the shorter one is used.
	SessionTimeout time.Duration
	// Layout names the contender nodes. Default LayoutCurator.
	Layout Layout
	// Auth, if set, is the digest identity the Session adds to its
	// connection before it begins any epoch (go-zookeeper sends it again
	// on every reconnect and new session).
	Auth *Digest
	// ACL is set on every node the recipes create, the root and the lock
	// nodes among them (nodes that already exist keep theirs). Default
	// Auth.ACL() with Auth (only that identity may change or delete,
	// everyone may read), else world:anyone with all permissions.
	ACL []zk.ACL
	// Logger receives the Session's logs, and the client library's.
	// Default slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told of reconnects, lost epochs and local
	// handoffs, for metrics. Its methods must return at once.
	Observer Observer
}

// Session owns one ZooKeeper connection and decides, by its own clock,
// whether the locks taken on it are still held. Its methods are safe for
// concurrent use. Close releases it.
type Session struct {
	cfg Config
	log *slog.Logger
	// cur is the ZooKeeper client in use. The run goroutine replaces it
	// (renew) when the ensemble refuses the old one's handshakes for good.
	cur atomic.Pointer[client]

	// Times below are nanoseconds since base, a monotonic origin.
	base        time.Time
	lastContact atomic.Int64 // when the newest request ZooKeeper confirmed was sent
	negotiated  atomic.Int64 // the session timeout ZooKeeper granted, 0 until known
	wantContact atomic.Bool  // a contact would change the state: kick the loop
	obs         Observer
	handoffs    handoffs
	tokens      tokenFloor
	positions   positions // position pollers (position.go)
	reads       queueReads
	kick        chan struct{}
	beat        chan struct{}
	sweep       chan struct{}
	stop        chan struct{}
	wg          sync.WaitGroup

	hubs observeHubs // the observers' watch hubs (observe.go)

	mu        sync.Mutex
	epoch     *Epoch // the live epoch, nil when there is none
	epochs    uint64 // epochs begun so far
	diedAt    int64  // when the last epoch ended
	connected bool
	since     int64 // when connected last changed
	closed    bool
	changed   chan struct{} // closed and replaced on every state change
	orphans   []*node       // nodes the janitor must delete
	// ending holds, by lock node, the holds released when a context ends
	// (Hold.ReleaseWhenDone) that no release has claimed yet.
	ending map[string]map[*node]struct{}
}

// client is one ZooKeeper client of the Session, and what its events told.
// Each client has its own, so that the events of a client that was
// replaced change nothing of the one in use.
type client struct {
	conn *zk.Conn
	// replacement: it replaced another, so its first session is a new
	// session after a loss (Observer.Reconnected).
	replacement bool
	expired     atomic.Bool // it reported StateExpired
	authed      atomic.Bool // ZooKeeper took Config.Auth on it (or there is none)
	used        atomic.Bool // it had a session: it presents a zxid on handshakes
	// Handshakes: the client library sets up each connection with a
	// handshake, which a server refuses (it closes the connection) when
	// the client saw later transactions than the server has, or when it is
	// not serving.
	handshaking atomic.Bool  // connected, handshake not answered yet
	refusals    atomic.Int32 // handshakes refused in a row
}

// Epoch is one stretch of a ZooKeeper session during which the Session
// vouches for the locks taken in it.
type Epoch struct {
	id        uint64
	sessionID int64
	done      chan struct{}
	err       error              // why it ended; set before done closes
	nodes     map[*node]struct{} // live nodes created in it; guarded by Session.mu
}

// ID returns the epoch's number, counted from 1 in this Session.
func (e *Epoch) ID() uint64 { return e.id }

// SessionID returns the ZooKeeper session id of the epoch.
func (e *Epoch) SessionID() int64 { return e.sessionID }

// Done returns a channel closed when the epoch ends: every lock held in it
// is lost from then on.
func (e *Epoch) Done() <-chan struct{} { return e.done }

// State is a snapshot of a Session's state.
type State struct {
	// Epoch is the live epoch, nil while there is no usable session.
	Epoch *Epoch
	// Connected is false while contact with ZooKeeper is in doubt
	// (suspended): locks may be lost.
	Connected bool
}

// Connect starts a Session. It returns at once: the Session connects, and
// reconnects, in the background; State tells when it is usable.
func Connect(cfg Config) (*Session, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("zkrecipes: no ZooKeeper servers given")
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.ACL == nil && cfg.Auth != nil {
		cfg.ACL = cfg.Auth.ACL()
	}
	if cfg.ACL == nil {
		cfg.ACL = zk.WorldACL(zk.PermAll)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	s := &Session{
		cfg:     cfg,
		log:     cfg.Logger,
		obs:     obs,
		base:    time.Now(),
		kick:    make(chan struct{}, 1),
		beat:    make(chan struct{}, 1),
		sweep:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	s.wantContact.Store(true)
	c, err := s.newClient(false)
	if err != nil {
		return nil, err
	}
	s.cur.Store(c)
	if ownClockOff {
		s.log.Warn("UNSAFE test build: the own clock is off, holders are lost only when the client library reports expiry")
	}
	s.reads = queueReads{conn: s.conn, wg: &s.wg}
	s.wg.Add(3)
	go s.run()
	go s.heartbeat()
	go s.janitor()
	if cfg.Auth != nil {
		s.wg.Add(1)
		go s.addAuth(c)
	}
	return s, nil
}

// newClient starts a ZooKeeper client, not yet in use. It may take a few
// seconds (the client library resolves the servers' names).
func (s *Session) newClient(replacement bool) (*client, error) {
	c := &client{replacement: replacement}
	c.authed.Store(s.cfg.Auth == nil)
	conn, err := connectZK(s.cfg.Servers, s.cfg.SessionTimeout, func(ev zk.Event) { s.onEvent(c, ev) }, zkLogger{s})
	if err != nil {
		return nil, fmt.Errorf("zkrecipes: %w", err)
	}
	c.conn = conn
	return c, nil
}

// connectZK starts a client library's client; tests replace it.
var connectZK = func(servers []string, timeout time.Duration, events zk.EventCallback, log zk.Logger) (*zk.Conn, error) {
	conn, _, err := zk.Connect(servers, timeout, zk.WithEventCallback(events), zk.WithLogger(log))
	return conn, err
}

// refusalsToRenew is how many handshakes refused in a row, with no epoch
// live, make the Session start over with a new client, if the client in
// use ever had a session.
const refusalsToRenew = 2

// renew replaces the client whose handshakes the servers keep refusing.
// go-zookeeper v1.0.4 presents the last zxid it saw on every handshake
// until a server tells it its session expired, and a server that has seen
// less (its data was lost, or restored from an older backup) refuses it
// without a word: the client would retry for ever. A new client presents
// none. A server that is not serving (an ensemble without a quorum)
// refuses handshakes the same way: a new client is started then too, once
// per outage, as a client that never had a session is not replaced.
//
// Called by run, the only goroutine that begins epochs, with no live
// epoch: every holder was told its lock is lost already, waiters queue
// again in the new session, and the janitor deletes the old session's
// nodes. The old session, if a server still has it, expires there. If the
// new client cannot be started, the old one stays in use and renew is
// tried again at the next look; it reports whether it replaced the client.
func (s *Session) renew() bool {
	old := s.cur.Load()
	c, err := s.newClient(true)
	if err != nil {
		s.log.Error("zookeeper servers keep refusing this client's handshakes, and a new client cannot be started: retrying", "err", err)
		return false
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.conn.Close()
		return false
	}
	s.cur.Store(c)
	s.wg.Add(1) // under s.mu, before Close can wait
	go func() { // Close waits up to 1 s for the server
		defer s.wg.Done()
		old.conn.Close()
	}()
	if s.cfg.Auth != nil {
		s.wg.Add(1)
		go s.addAuth(c)
	}
	s.mu.Unlock()
	s.log.Warn("zookeeper servers keep refusing this client's handshakes: started over with a new client and a new session "+
		"(they are not serving, or have seen fewer transactions than this client: their data was lost or restored from an older backup)",
		"refused", old.refusals.Load())
	s.obs.NewClient()
	return true
}

// conn returns the ZooKeeper client in use.
func (s *Session) conn() *zk.Conn { return s.cur.Load().conn }

// Close ends the Session: every epoch ends, waiting Lock calls return
// ErrClosed, and the ZooKeeper session is closed, which deletes its
// ephemeral nodes. Release locks first to have their deletes confirmed.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.epoch != nil {
		s.endEpochLocked(s.epoch, ErrClosed)
	}
	s.broadcastLocked()
	s.mu.Unlock()
	close(s.stop)
	s.reads.close()
	s.conn().Close()
	s.wg.Wait()
}

// State returns the current state and a channel closed at the next change.
func (s *Session) State() (State, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{Epoch: s.epoch, Connected: s.epoch != nil && s.connected}, s.changed
}

// Timeout returns the session timeout in force: the one ZooKeeper granted
// if shorter than the one asked for.
func (s *Session) Timeout() time.Duration {
	to := s.cfg.SessionTimeout
	if n := time.Duration(s.negotiated.Load()); n > 0 && n < to {
		to = n
	}
	return to
}

// Valid reports whether e is still the live epoch by the local clock. It
// ends the epoch if its deadline has passed, so that a process resumed
// after a long pause learns of the loss before it answers anyone.
func (s *Session) Valid(e *Epoch) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != e {
		return false
	}
	if c := s.cur.Load(); c.conn.SessionID() != e.sessionID || c.expired.Load() {
		s.endEpochLocked(e, errExpired(e.sessionID))
		return false
	}
	if now >= s.deadline() {
		s.endEpochLocked(e, errNoContact(time.Duration(now-s.lastContact.Load())))
		return false
	}
	return true
}

// now returns nanoseconds since base on the monotonic clock.
func (s *Session) now() int64 { return int64(time.Since(s.base)) }

// The Session's clock, as fractions of the session timeout in force:
//
//   - a sync confirms the session every tenth of it (heartbeatDiv);
//   - holders are suspended after a third of it without contact
//     (suspendDiv);
//   - they are lost a quarter of it before the session could expire
//     (marginDiv), counted from the last contact. ZooKeeper's leader
//     learns of a client's requests to a follower only at its next ping of
//     that follower, so the margin must cover a heartbeat interval, the
//     leader's ping interval (half a tick) and the delivery of the news.
const (
	heartbeatDiv = 10
	suspendDiv   = 3
	marginDiv    = 4
)

// deadline returns when the current session could expire, less the margin.
func (s *Session) deadline() int64 {
	if ownClockOff {
		return math.MaxInt64
	}
	to := s.Timeout()
	return s.lastContact.Load() + int64(to-to/marginDiv)
}

// touch records that ZooKeeper confirmed a request sent at sent.
func (s *Session) touch(sent int64) {
	for {
		old := s.lastContact.Load()
		if sent <= old || s.lastContact.CompareAndSwap(old, sent) {
			break
		}
	}
	if s.wantContact.Load() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// onEvent takes the events of the client c. It must not block.
func (s *Session) onEvent(c *client, ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	// The Session's logs speak of the client in use (or of the first, not
	// stored yet), not of one that was replaced.
	current := s.cur.Load()
	logs := current == nil || current == c
	switch ev.State {
	case zk.StateConnected: // a connection, its handshake under way
		c.handshaking.Store(true)
	case zk.StateExpired:
		c.expired.Store(true)
		c.handshaking.Store(false)
		c.refusals.Store(0)
		if logs {
			s.log.Info("zookeeper session expired: a new session follows", "server", ev.Server)
		}
	case zk.StateHasSession:
		c.handshaking.Store(false)
		c.refusals.Store(0)
		if c.used.Swap(true) || c.replacement {
			s.obs.Reconnected()
		}
	case zk.StateDisconnected:
		if c.handshaking.Swap(false) && c.refusals.Add(1) == 1 && logs {
			s.log.Warn("zookeeper server refused this client's handshake", "server", ev.Server)
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run owns the state: it ends and begins epochs and tracks suspension.
func (s *Session) run() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		next, renew := s.evaluate()
		if renew {
			next = time.Second // retry if the new client could not be started
			if s.renew() {
				next = time.Millisecond // look at the new client's state
			}
		}
		t.Reset(next)
	}
}

// evaluate brings the state up to date and returns when to look again,
// and whether to replace the client (renew).
func (s *Session) evaluate() (next time.Duration, renew bool) {
	c := s.cur.Load()
	libState := c.conn.State()
	sid := c.conn.SessionID()
	expired := c.expired.Swap(false)
	now := s.now()
	last := s.lastContact.Load()
	to := int64(s.Timeout())
	deadline := s.deadline()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return time.Hour, false
	}
	changed := false
	if e := s.epoch; e != nil {
		switch {
		case expired || sid != e.sessionID:
			s.endEpochLocked(e, errExpired(e.sessionID))
		case now >= deadline:
			s.endEpochLocked(e, errNoContact(time.Duration(now-last)))
		}
	}
	if s.epoch == nil && libState != zk.StateHasSession && c.refusals.Load() >= refusalsToRenew && c.used.Load() {
		return 0, true
	}
	hasSession := libState == zk.StateHasSession && sid != 0 && c.authed.Load()
	if s.epoch == nil && hasSession && last > s.diedAt && now < deadline {
		s.epochs++
		s.epoch = &Epoch{id: s.epochs, sessionID: sid, done: make(chan struct{}), nodes: make(map[*node]struct{})}
		s.log.Info("zookeeper session connected: locks are served", "session", fmt.Sprintf("0x%x", sid), "epoch", s.epochs, "timeout", s.Timeout())
		changed = true
	}
	connected := s.epoch != nil && hasSession && now-last < to/suspendDiv
	if connected != s.connected {
		switch {
		case s.epoch != nil && !connected:
			why := "connection lost"
			if hasSession {
				why = "no reply"
			}
			s.log.Warn("zookeeper session suspended: contact in doubt, holders suspended", "why", why, "since_contact", time.Duration(now-last))
		case s.epoch != nil && !changed: // not just begun
			s.log.Info("zookeeper session connected again: holders resumed", "suspended_for", time.Duration(now-s.since))
		}
		s.connected = connected
		s.since = now
		changed = true
	}
	if changed {
		s.broadcastLocked()
	}
	s.wantContact.Store(s.epoch == nil || !s.connected)
	if hasSession && !s.connected {
		select {
		case s.beat <- struct{}{}:
		default:
		}
	}
	next = time.Duration(to / 10)
	if s.epoch != nil {
		if d := time.Duration(deadline - now); d < next {
			next = d
		}
		if s.connected {
			if d := time.Duration(last + to/suspendDiv - now); d < next {
				next = d
			}
		}
	}
	return max(next, time.Millisecond), false
}

// endEpochLocked ends e: its holders are lost and its nodes go to the
// janitor. s.mu must be held.
func (s *Session) endEpochLocked(e *Epoch, err error) {
	if s.epoch != e {
		return
	}
	if loss, ok := errors.AsType[*epochLoss](err); ok {
		s.obs.EpochLost(loss.cause)
	}
	e.err = err
	close(e.done)
	s.epoch = nil
	s.diedAt = s.now()
	s.connected = false
	s.since = s.diedAt
	for n := range e.nodes {
		if !n.busy {
			s.orphans = append(s.orphans, n)
		}
		if m := s.ending[n.parent]; m != nil {
			delete(m, n)
			if len(m) == 0 {
				delete(s.ending, n.parent)
			}
		}
	}
	e.nodes = nil
	s.wantContact.Store(true)
	s.broadcastLocked()
	if loss, ok := errors.AsType[*epochLoss](err); ok {
		s.log.Warn("zookeeper session lost: holders lost", "cause", loss.cause, "session", fmt.Sprintf("0x%x", e.sessionID), "epoch", e.id, "err", err)
	} else {
		s.log.Debug("zookeeper session closed", "session", fmt.Sprintf("0x%x", e.sessionID), "epoch", e.id)
	}
	select {
	case s.sweep <- struct{}{}:
	default:
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// endEpoch ends e if it is still the live epoch.
func (s *Session) endEpoch(e *Epoch, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endEpochLocked(e, err)
}

func (s *Session) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// heartbeat confirms the session regularly with a sync, which passes
// through the leader: a follower that has not applied the session's expiry
// cannot vouch for it.
func (s *Session) heartbeat() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.beat:
		}
		if s.conn().State() == zk.StateHasSession {
			sent := s.now()
			if _, err := s.conn().Sync("/"); err == nil {
				s.touch(sent)
			}
		}
		t.Reset(s.Timeout() / heartbeatDiv)
	}
}

// zkLogger routes the client library's logs to slog, and learns the
// session timeout ZooKeeper granted.
type zkLogger struct{ s *Session }

func (l zkLogger) Printf(format string, args ...any) {
	if strings.HasPrefix(format, "authenticated: id=%d, timeout=%d") && len(args) == 2 {
		if ms, ok := args[1].(int32); ok {
			l.s.negotiated.Store(int64(ms) * int64(time.Millisecond))
		}
	}
	level := slog.LevelWarn
	// Handshake failures ("authentication failed", with or without auth
	// configured) are reported by the Session's own lines, in its words:
	// session expired, handshake refused, connected again.
	if strings.HasPrefix(format, "authenticated") || strings.HasPrefix(format, "connected to") ||
		strings.HasPrefix(format, "authentication failed") ||
		strings.Contains(format, "loop terminated") || strings.HasPrefix(format, "re-submitting") {
		level = slog.LevelDebug
	}
	l.s.log.Log(context.Background(), level, "zookeeper client: "+fmt.Sprintf(format, args...))
}

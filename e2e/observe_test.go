package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// termRecorder records the terms of an election: each leader, as it takes the
// lead and before it resigns, sends "LEAD <term>" over TCP, answered "OK";
// as leaders do not overlap, the lines come in the order of the terms. A
// contender may first say "READY <who>".
type termRecorder struct {
	lis   net.Listener
	ready chan string

	mu    sync.Mutex
	terms []string
	bad   []string
}

func startTermRecorder(t *testing.T) *termRecorder {
	t.Helper()
	r := &termRecorder{ready: make(chan string, 10)}
	r.lis = listenLines(t, func(f []string) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case len(f) == 2 && f[0] == "LEAD":
			r.terms = append(r.terms, f[1])
		case len(f) == 2 && f[0] == "READY":
			r.ready <- f[1]
		default:
			r.bad = append(r.bad, strings.Join(f, " "))
		}
		return "OK"
	}, nil)
	return r
}

func (r *termRecorder) addr() string { return r.lis.Addr().String() }

func (r *termRecorder) recorded() (terms, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.terms), slices.Clone(r.bad)
}

// goLeader campaigns rounds times for lock at d, each time with a new
// Acquire whose owner label names the term (who#round); it leads for hold,
// then resigns by Release, or every other round by ending its stream.
func goLeader(ctx context.Context, d *daemon, lock, recorderAddr, who string, rounds int, hold time.Duration) error {
	rc, err := net.Dial("tcp", recorderAddr)
	if err != nil {
		return err
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	rr := bufio.NewReader(rc)
	for i := 1; i <= rounds; i++ {
		term := fmt.Sprintf("%s#%d", who, i)
		if err := leadOnce(ctx, d, lock, term, hold, i%2 == 0, func() error {
			fmt.Fprintln(rc, "LEAD "+term)
			if reply, err := rr.ReadString('\n'); err != nil || reply != "OK\n" {
				return fmt.Errorf("%s: recorder answered %q (%v)", term, reply, err)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// leadOnce leads once: it waits for the grant, calls lead, leads for hold,
// and resigns.
func leadOnce(ctx context.Context, d *daemon, lock, term string, hold time.Duration, byCancel bool, lead func() error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := d.client.Acquire(sctx, &zklockv1.AcquireRequest{Lock: lock, Owner: term})
	if err != nil {
		return err
	}
	g, err := awaitGranted(s, term)
	if err != nil {
		return err
	}
	if err := lead(); err != nil {
		return err
	}
	time.Sleep(hold)
	if byCancel {
		return nil
	}
	if _, err := d.client.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
		return fmt.Errorf("%s: Release: %w", term, err)
	}
	if e, err := s.Recv(); err != nil || e.GetReleased() == nil {
		return fmt.Errorf("%s: %v (%v) after Release, want Released", term, e, err)
	}
	return nil
}

// observeStream reads an Observe stream in the background.
type observeStream struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed once final is set

	mu    sync.Mutex
	msgs  []*zklockv1.ObserveResponse
	final error
}

// observe calls Observe; the stream is cancelled when the test ends.
func (d *daemon) observe(name, lock string) *observeStream {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := d.client.Observe(ctx, &zklockv1.ObserveRequest{Lock: lock})
	if err != nil {
		cancel()
		d.t.Fatalf("%s: Observe: %v", name, err)
	}
	o := &observeStream{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for {
			m, err := s.Recv()
			o.mu.Lock()
			if err != nil {
				o.final = err
				o.mu.Unlock()
				return
			}
			o.msgs = append(o.msgs, m)
			o.mu.Unlock()
		}
	}()
	d.t.Cleanup(func() {
		cancel()
		<-o.done
	})
	return o
}

func (o *observeStream) messages() []*zklockv1.ObserveResponse {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.msgs)
}

// leaders returns the owner of the holder of each message so far that has
// one, whether the last message shows no holder, and what is wrong with
// the messages: each must show at most one holder (an exclusive lock), a
// queue at least as long as the holders, and holders other than the
// message before's.
func (o *observeStream) leaders() (owners []string, none bool, wrong []string) {
	var prev []string
	msgs := o.messages()
	for i, m := range msgs {
		var nodes []string
		for _, h := range m.GetHolders() {
			nodes = append(nodes, h.GetNode())
		}
		switch {
		case len(m.GetHolders()) > 1:
			wrong = append(wrong, fmt.Sprintf("message %d: %d holders of an exclusive lock: %v", i, len(m.GetHolders()), m))
		case int(m.GetQueueLength()) < len(m.GetHolders()):
			wrong = append(wrong, fmt.Sprintf("message %d: queue_length below the holders: %v", i, m))
		case i > 0 && slices.Equal(nodes, prev):
			wrong = append(wrong, fmt.Sprintf("message %d: the holders did not change: %v", i, m))
		}
		prev = nodes
		if len(m.GetHolders()) > 0 {
			owners = append(owners, m.GetHolders()[0].GetOwner())
		}
	}
	return owners, len(msgs) > 0 && len(msgs[len(msgs)-1].GetHolders()) == 0, wrong
}

// TestObserveFollowsLeaders: two zklock contenders (one at each of two
// zklockds) and a Curator LeaderSelector (straight on ZooKeeper) take turns
// leading one election, 21 terms of at least 200 ms; Observe at either
// zklockd reports each leader in turn, missing none and inventing none:
// the leaders it reports are the terms, in their order. An observer that
// starts mid-election first gets the present state, then follows.
func TestObserveFollowsLeaders(t *testing.T) {
	t.Parallel()
	const (
		lock   = "election"
		rounds = 7 // per contender: 21 terms, 20 changes of leader
		hold   = 200 * time.Millisecond
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cp := javaClassPath(t)
	zkc := zktest.StartStandalone(t)
	metricsAddr := freeLoopbackAddr(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{args: []string{"--metrics-listen", metricsAddr}})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})
	rec := startTermRecorder(t)

	oa := a.observe("observer at a", lock)
	zktest.Eventually(t, wait, "Observe sends the present state first", func() bool { return len(oa.messages()) > 0 })
	if m := oa.messages()[0]; len(m.GetHolders()) != 0 || m.GetQueueLength() != 0 {
		t.Errorf("observer at a: first message %v, want no holder and an empty queue", m)
	}
	wantSeries(t, scrapeMetrics(t, "http://"+metricsAddr+"/metrics"), map[string]float64{"zklock_observers": 1})

	java := exec.CommandContext(ctx, "java", "-cp", cp, "io.zklock.LeaderContender",
		zkc.ConnectString(), "/zklock/"+lock, strconv.Itoa(rounds), strconv.Itoa(int(hold/time.Millisecond)), rec.addr(), "curator-1")
	cs := []*contenders{startContenders(nil, map[string]*exec.Cmd{"curator-1": java})}
	t.Cleanup(func() {
		for _, c := range cs {
			c.wg.Wait()
		}
	})
	select {
	case <-rec.ready:
	case <-time.After(semWait):
		t.Fatalf("the Curator contender was not ready within %v: %v", semWait, contenderFailures(cs))
	}
	cs = append(cs, startContenders(map[string]func() error{
		"a-1": func() error { return goLeader(ctx, a, lock, rec.addr(), "a-1", rounds, hold) },
		"b-1": func() error { return goLeader(ctx, b, lock, rec.addr(), "b-1", rounds, hold) },
	}, nil))

	var early []string
	zktest.Eventually(t, semWait, "3 terms went by", func() bool {
		early, _ = rec.recorded()
		return len(early) >= 3 || len(contenderFailures(cs)) > 0
	})
	ob := b.observe("observer at b", lock)
	zktest.Eventually(t, wait, "Observe at b sends the present state first", func() bool { return len(ob.messages()) > 0 })
	late, _ := rec.recorded()

	for _, c := range cs {
		c.wait(t)
	}
	if t.Failed() {
		t.FailNow()
	}
	terms, bad := rec.recorded()
	if len(bad) > 0 {
		t.Errorf("recorder got bad lines %q", bad)
	}
	if len(terms) != 3*rounds {
		t.Fatalf("%d terms %v, want %d", len(terms), terms, 3*rounds)
	}
	for _, o := range []*observeStream{oa, ob} {
		zktest.Eventually(t, wait, o.name+" reports that no one leads any more", func() bool {
			_, none, _ := o.leaders()
			return none
		})
		_, _, wrong := o.leaders()
		for _, w := range wrong {
			t.Errorf("%s: %s", o.name, w)
		}
	}
	seen, _, _ := oa.leaders()
	if !slices.Equal(seen, terms) {
		t.Errorf("observer at a reported the leaders\n%v\nwant the terms\n%v", seen, terms)
	}
	// The observer at b started once the terms early were recorded, and
	// had its first message before the terms late were: it reports the
	// terms from one then led (or the next) on.
	seen, _, _ = ob.leaders()
	if k := len(terms) - len(seen); k < len(early)-1 || k > len(late) || !slices.Equal(seen, terms[k:]) {
		t.Errorf("observer at b (started after the terms %v, first message before %v) reported the leaders\n%v\nwant the terms from then on\n%v", early, late[len(early):], seen, terms)
	}
	t.Logf("%d terms; observer at a got %d messages, at b %d", len(terms), len(oa.messages()), len(ob.messages()))

	for _, o := range []*observeStream{oa, ob} {
		select {
		case <-o.done:
			t.Errorf("%s: stream ended (%v), want it open", o.name, o.final)
		default:
		}
	}
	oa.cancel()
	<-oa.done
	if status.Code(oa.final) != codes.Canceled {
		t.Errorf("observer at a: stream ended with %v after cancel, want CANCELED", oa.final)
	}
	url := "http://" + metricsAddr + "/metrics"
	zktest.Eventually(t, wait, "zklock_observers is 0 once the observer left", func() bool { return scrapeMetrics(t, url)["zklock_observers"] == 0 })
}

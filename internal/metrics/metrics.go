// Package metrics is zklockd's Prometheus instrumentation: the lock and
// ZooKeeper session metrics (prefix zklock_), gRPC server metrics from
// go-grpc-middleware's prometheus provider, Go and process metrics, all in
// a registry of its own, and the HTTP server that serves them at /metrics.
//
// It is the only package that imports Prometheus. The recipes and the
// sidecar report through small interfaces ([zkrecipes.Observer],
// [sidecar.Metrics]) that a [Metrics] implements with counters, gauges and
// histograms: every call returns at once.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/zklock/zklock/sidecar"
	"github.com/zklock/zklock/zkrecipes"
)

// lockBuckets are the buckets, in seconds, of the lock histograms: half a
// millisecond (a local handoff) to ten minutes (a long wait in a queue).
var lockBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// grpcBuckets are the buckets of grpc_server_handling_seconds: an Acquire
// stream lasts as long as its lease, so they go up to an hour.
var grpcBuckets = append(append([]float64(nil), lockBuckets...), 1800, 3600)

// Loss reasons, the values of zklock_leases_lost_total's reason label.
var lossReasons = []string{"lease_expired", "session_expired", "shutdown"}

// Metrics holds zklockd's metrics and the registry they are in. It
// implements zkrecipes.Observer and sidecar.Metrics. Its methods are safe
// for concurrent use.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	leasesHeld      prometheus.Gauge
	waiters         prometheus.Gauge
	acquireWait     prometheus.Histogram
	handoff         prometheus.Histogram
	leaseExpiries   prometheus.Counter
	leasesLost      *prometheus.CounterVec
	reconnects      prometheus.Counter
	newClients      prometheus.Counter
	tokensFell      prometheus.Counter
	sessionExpiries *prometheus.CounterVec
	reentries       prometheus.Counter
	observers       prometheus.Gauge
}

var (
	_ zkrecipes.Observer = (*Metrics)(nil)
	_ sidecar.Metrics    = (*Metrics)(nil)
)

// New returns the metrics in a new registry, with Go and process metrics
// beside them. The session state is there once FollowSession is called.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(
			grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(grpcBuckets))),
		leasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zklock_leases_held",
			Help: "Leases this sidecar granted that have not ended yet, stream-bound and detached.",
		}),
		waiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zklock_waiters",
			Help: "Acquire calls of this sidecar waiting in a lock's queue, not granted yet.",
		}),
		acquireWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zklock_acquire_wait_seconds",
			Help:    "Time from the start of an Acquire call to its grant, for granted calls.",
			Buckets: lockBuckets,
		}),
		handoff: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "zklock_local_handoff_seconds",
			Help: "Release-to-grant latency inside this sidecar: from the release of an exclusive lease " +
				"to the grant of this sidecar's waiter that queued right behind it, which does not wait for the delete. " +
				"Handoffs to or from other sidecars are not seen.",
			Buckets: lockBuckets,
		}),
		leaseExpiries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zklock_lease_expiries_total",
			Help: "Detached leases whose ttl ran out without a Renew (the same count as zklock_leases_lost_total{reason=\"lease_expired\"}).",
		}),
		leasesLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zklock_leases_lost_total",
			Help: "Leases that ended without a release, by reason: lease_expired (ttl ran out), " +
				"session_expired (the ZooKeeper session expired or may have), shutdown (the sidecar shut down).",
		}, []string{"reason"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zklock_zookeeper_reconnects_total",
			Help: "Times the ZooKeeper client had a session again after losing its connection (the same session, or a new one after an expiry).",
		}),
		newClients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zklock_zookeeper_new_clients_total",
			Help: "Times the sidecar started over with a new ZooKeeper client because the servers kept refusing the old one's handshakes " +
				"after its session was lost: they were not serving, or had seen fewer transactions than it had (their data was lost, or restored from an older backup).",
		}),
		tokensFell: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zklock_fencing_token_regressions_total",
			Help: "Times a lock node was created with a fencing token (its czxid) lower than one this sidecar had before: " +
				"ZooKeeper's history went back (its data was lost, or restored from an older backup). " +
				"Resources that reject lower tokens refuse new holders until their high-water mark is reset.",
		}),
		sessionExpiries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zklock_zookeeper_session_expiries_total",
			Help: "Epochs of the ZooKeeper session that ended with every holder lost, by cause: expired (ZooKeeper reported the session expired, " +
				"or the client moved to a new session) or own_clock (the sidecar's own clock: no confirmed contact for the session timeout less a margin).",
		}, []string{"cause"}),
		reentries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zklock_reentries_total",
			Help: "Leases granted by re-entry (AcquireRequest.reenter): at once, on a lock a lease of this sidecar already held.",
		}),
		observers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zklock_observers",
			Help: "Observe streams of this sidecar that are open.",
		}),
	}
	for _, r := range lossReasons {
		m.leasesLost.WithLabelValues(r)
	}
	for _, c := range []zkrecipes.LossCause{zkrecipes.LossExpired, zkrecipes.LossOwnClock} {
		m.sessionExpiries.WithLabelValues(c.String())
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc,
		m.leasesHeld, m.waiters, m.acquireWait, m.handoff,
		m.leaseExpiries, m.leasesLost, m.reconnects, m.newClients, m.tokensFell, m.sessionExpiries,
		m.reentries, m.observers,
	)
	return m
}

// Registry returns the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// FollowSession adds zklock_zookeeper_session_state, read from sess at
// each scrape. Call it once.
func (m *Metrics) FollowSession(sess *zkrecipes.Session) {
	m.reg.MustRegister(&sessionState{sess: sess, desc: prometheus.NewDesc("zklock_zookeeper_session_state",
		"The ZooKeeper session's state, 1 for the current one: connected (locks are served), suspended (contact in doubt: "+
			"holders told Suspended), no_session (none usable: Acquire answers UNAVAILABLE).",
		[]string{"state"}, nil)})
}

// sessionState collects the session state gauge at scrape time.
type sessionState struct {
	sess *zkrecipes.Session
	desc *prometheus.Desc
}

func (c *sessionState) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sessionState) Collect(ch chan<- prometheus.Metric) {
	st, _ := c.sess.State()
	cur := "no_session"
	switch {
	case st.Epoch != nil && st.Connected:
		cur = "connected"
	case st.Epoch != nil:
		cur = "suspended"
	}
	for _, s := range []string{"connected", "suspended", "no_session"} {
		v := 0.0
		if s == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, s)
	}
}

// UnaryInterceptors and StreamInterceptors return the interceptors that
// record the gRPC server metrics (grpc_server_*, with the handling time
// histogram), to run first on every call. A method's series appear at its
// first call, a status code's at its first use: not listing every method
// and code up front keeps a sidecar, one per pod, to the series of what it
// serves (hundreds fewer).
func (m *Metrics) UnaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{m.grpc.UnaryServerInterceptor()}
}

// StreamInterceptors: see UnaryInterceptors.
func (m *Metrics) StreamInterceptors() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{m.grpc.StreamServerInterceptor()}
}

// Reconnected implements zkrecipes.Observer.
func (m *Metrics) Reconnected() { m.reconnects.Inc() }

// NewClient implements zkrecipes.Observer.
func (m *Metrics) NewClient() { m.newClients.Inc() }

// TokensFell implements zkrecipes.Observer.
func (m *Metrics) TokensFell() { m.tokensFell.Inc() }

// EpochLost implements zkrecipes.Observer.
func (m *Metrics) EpochLost(cause zkrecipes.LossCause) {
	m.sessionExpiries.WithLabelValues(cause.String()).Inc()
}

// Handoff implements zkrecipes.Observer.
func (m *Metrics) Handoff(d time.Duration) { m.handoff.Observe(d.Seconds()) }

// WaitStarted implements sidecar.Metrics.
func (m *Metrics) WaitStarted() { m.waiters.Inc() }

// WaitEnded implements sidecar.Metrics.
func (m *Metrics) WaitEnded() { m.waiters.Dec() }

// Granted implements sidecar.Metrics.
func (m *Metrics) Granted(wait time.Duration) {
	m.leasesHeld.Inc()
	m.acquireWait.Observe(wait.Seconds())
}

// LeaseEnded implements sidecar.Metrics.
func (m *Metrics) LeaseEnded(reason string) {
	m.leasesHeld.Dec()
	switch reason {
	case "released":
		return
	case "lease_expired":
		m.leaseExpiries.Inc()
	}
	m.leasesLost.WithLabelValues(reason).Inc()
}

// Reentered implements sidecar.Metrics.
func (m *Metrics) Reentered() { m.reentries.Inc() }

// ObserveStarted implements sidecar.Metrics.
func (m *Metrics) ObserveStarted() { m.observers.Inc() }

// ObserveEnded implements sidecar.Metrics.
func (m *Metrics) ObserveEnded() { m.observers.Dec() }

// Handler returns the HTTP handler that serves the metrics at /metrics,
// and 404 at every other path.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	return mux
}

// Server serves the metrics over HTTP.
type Server struct {
	http *http.Server
	done chan struct{} // closed when the serving goroutine returned
	once sync.Once
}

// stopTimeout bounds how long Stop waits for scrapes in flight.
const stopTimeout = 5 * time.Second

// Serve serves m's Handler on lis in a goroutine of its own, until Stop.
// If serving fails (the listener breaks) it logs the error and returns:
// locks are still served, and the scraper sees the target down.
func (m *Metrics) Serve(lis net.Listener, log *slog.Logger) *Server {
	s := &Server{
		http: &http.Server{
			Handler:           m.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped: /metrics is no longer served", "err", err)
		}
	}()
	return s
}

// Stop stops the server: it closes its listener, waits up to 5 s for
// scrapes in flight, then closes them, and returns once the serving
// goroutine has. Calling it again does nothing.
func (s *Server) Stop() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			s.http.Close()
		}
		<-s.done
	})
}

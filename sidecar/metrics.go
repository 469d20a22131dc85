package sidecar

import "time"

// Metrics receives the Service's measurements, for monitoring. Its methods
// are called on the Acquire path, some with a lease's lock held: they must
// return at once (update a counter; no I/O, no waiting). A nil
// Config.Metrics records nothing.
type Metrics interface {
	// WaitStarted and WaitEnded bracket one Acquire call's wait: from its
	// admission (past validation and the limits) until it is granted or
	// gives up.
	WaitStarted()
	WaitEnded()
	// Granted is called once per lease granted, with the time from the
	// start of its Acquire call to the grant, just before Granted is sent.
	Granted(wait time.Duration)
	// LeaseEnded is called once per granted lease when it ends, with why:
	// "released" (Release, or its stream ended), "lease_expired" (a
	// detached lease's ttl ran out), "session_expired" (its ZooKeeper
	// epoch ended) or "shutdown" (the sidecar shut down).
	LeaseEnded(reason string)
	// Reentered is called once per lease granted by re-entry (it is
	// counted by Granted too).
	Reentered()
	// ObserveStarted and ObserveEnded bracket one Observe call's stream.
	ObserveStarted()
	ObserveEnded()
}

// nopMetrics is the Metrics of a Service configured without any.
type nopMetrics struct{}

func (nopMetrics) WaitStarted()             {}
func (nopMetrics) WaitEnded()               {}
func (nopMetrics) Granted(time.Duration)    {}
func (nopMetrics) LeaseEnded(reason string) {}
func (nopMetrics) Reentered()               {}
func (nopMetrics) ObserveStarted()          {}
func (nopMetrics) ObserveEnded()            {}

"""Python client of the zklock sidecar (zklockd).

    import zklock

    client = zklock.Client("127.0.0.1:7878")
    with client.lock("orders/42", owner="billing") as lease:
        write(data, fencing_token=lease.token)

The lease holds the sidecar's Acquire stream open while the ``with`` block
runs: the stream is the lock, so there is nothing to renew. Leaving the block
releases it. If the lock is lost meanwhile (the sidecar says so, or the
stream breaks), ``lease.lost`` is set and ``on_lost`` is called with the
reason.

A lease is not proof that no one else holds the lock: a paused process may
learn of a loss late. Send ``lease.token`` with every write to the protected
resource, and have the resource refuse tokens lower than the highest it has
seen.

More kinds of lock:

    with client.semaphore("pool/gpu", 4) as lease:   # one of 4 permits
        ...
    with client.lock("orders/42") as outer:
        with outer.reenter() as inner:               # same token, no wait
            ...
    for state in client.observe("orders/42"):        # who holds it, on change
        print([h.owner for h in state.holders])

and leader election, where the leader is the holder of a lock and its owner
label the value it campaigned with:

    election = client.election("billing/leader")
    with election.campaign("10.0.0.7:8080") as lead:  # leaving resigns
        serve(lead.token)
    for leader in election.observe():                 # Holder, or None
        route(leader.owner if leader else None)
"""

import dataclasses
import datetime
import threading

import grpc
from google.protobuf import duration_pb2

from zklock.v1 import lock_pb2, lock_pb2_grpc

__all__ = ["Client", "Election", "Holder", "Lease", "LockError", "LockHeld", "Observation", "State"]


class LockError(Exception):
    """A lock could not be taken or released; ``code`` is the gRPC status."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code


class LockHeld(LockError):
    """A try-once (``wait=0``) found the lock held by another."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """One holder of a lock or semaphore, as ZooKeeper shows it.

    ``owner`` is the label it gave (the leader's value in an election), or
    its node's data as text for a holder that is not a zklock sidecar
    (Curator, Kazoo); ``token`` its fencing token (its node's czxid);
    ``node`` its node's name; ``shared`` whether it holds a shared lock;
    ``reentered``, as Describe (Election.leader) counts them, how many of
    its leases hold it through re-entry beyond the first (0 for holders of
    other sidecars and clients, and in Observe's states); ``create_time``
    when it joined the queue (a UTC datetime)."""

    owner: str
    token: int
    node: str
    shared: bool
    reentered: int
    create_time: datetime.datetime

    @classmethod
    def _of(cls, c):
        return cls(owner=c.owner, token=c.fencing_token, node=c.node,
                   shared=c.mode == lock_pb2.MODE_SHARED, reentered=c.reentered,
                   create_time=c.create_time.ToDatetime(tzinfo=datetime.timezone.utc))


@dataclasses.dataclass(frozen=True)
class State:
    """Who holds a lock: ``holders`` in queue order (for an exclusive lock at
    most one, the leader of an election), ``queue_length`` contenders in the
    queue, the holders included, and ``permits`` for a semaphore (0 for a
    lock)."""

    holders: tuple
    queue_length: int
    permits: int

    @property
    def leader(self):
        """The first holder, or None."""
        return self.holders[0] if self.holders else None

    @classmethod
    def _of(cls, r):
        return cls(holders=tuple(Holder._of(c) for c in r.holders),
                   queue_length=r.queue_length, permits=r.permits)


def _duration(seconds):
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class Client:
    """Takes locks through one zklockd at ``addr`` (host:port, or
    unix:///path)."""

    def __init__(self, addr="127.0.0.1:7878", channel=None):
        # Keepalive pings let a lease notice a sidecar that froze or a dead
        # connection (within about 15 s).
        self._channel = channel or grpc.insecure_channel(addr, options=[
            ("grpc.keepalive_time_ms", 10000),
            ("grpc.keepalive_timeout_ms", 5000),
            ("grpc.keepalive_permit_without_calls", 1),
        ])
        self._stub = lock_pb2_grpc.LockServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def lock(self, name, *, shared=False, owner="", wait=None, on_lost=None, on_queued=None,
             reenter=None):
        """Waits until it holds the lock ``name`` and returns its Lease, a
        context manager that releases it.

        ``wait`` bounds the wait in seconds (None: no bound; 0: try once,
        raising LockHeld if the lock is held). ``on_queued(position,
        length)`` is called while waiting; ``on_lost(reason)`` if the lock is
        lost while held.

        ``reenter``, a Lease or a lease id (such as $ZKLOCK_LEASE under
        ``zklock run``) held on ``name``, takes the lock again through it,
        at once: see Lease.reenter. Raises LockError NOT_FOUND if the
        sidecar knows no such lease (or it was released), ABORTED if it was
        lost, INVALID_ARGUMENT if it is a lease of another lock.
        """
        req = lock_pb2.AcquireRequest(lock=name, owner=owner)
        if shared:
            req.mode = lock_pb2.MODE_SHARED
        if reenter is not None:
            req.reenter = reenter.id if isinstance(reenter, Lease) else reenter
            if not req.reenter:
                raise ValueError("reenter: empty lease id")
        return self._acquire(req, wait, on_lost, on_queued)

    def semaphore(self, name, permits, *, owner="", wait=None, on_lost=None, on_queued=None):
        """Waits until it holds one of the ``permits`` permits of the
        semaphore ``name`` and returns its Lease, as ``lock`` does: at most
        ``permits`` holders hold it at once, served first come first served,
        each with a fencing token of its own. Every contender of ``name``
        must ask for the same number: LockError FAILED_PRECONDITION
        otherwise (also if ``name`` is held as a lock). ``on_queued`` is
        informative only for a semaphore."""
        if permits < 1:
            raise ValueError(f"permits must be at least 1, not {permits}")
        req = lock_pb2.AcquireRequest(lock=name, owner=owner, permits=permits)
        return self._acquire(req, wait, on_lost, on_queued)

    def _acquire(self, req, wait, on_lost, on_queued):
        if wait is not None and not req.reenter:
            req.wait.CopyFrom(_duration(wait))
        call = self._stub.Acquire(req)
        try:
            for ev in call:
                kind = ev.WhichOneof("event")
                if kind == "queued" and on_queued:
                    on_queued(ev.queued.position, ev.queued.queue_length)
                elif kind == "granted":
                    return Lease(self, req.lock, call, ev.granted, on_lost)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and wait == 0:
                raise LockHeld(e.code(), e.details()) from None
            raise LockError(e.code(), e.details()) from None
        except BaseException:
            call.cancel()
            raise
        raise LockError(grpc.StatusCode.UNKNOWN, "stream ended before the grant")

    def observe(self, name):
        """Observes who holds the lock (or semaphore) ``name``: returns an
        Observation, an iterator of States: the present one, then one each
        time the set of holders changes (changes closer together than a
        ZooKeeper round trip may come as one). It sees holders of every kind
        of client on that path (zklock sidecars, Curator, Kazoo).

        Returns once the present state arrived; raises LockError
        (INVALID_ARGUMENT for a bad name). Iterating raises LockError if the
        sidecar ends the observation (UNAVAILABLE when it lost its ZooKeeper
        session or shuts down: observe again); ``cancel()``, from any
        thread, or leaving its ``with`` block ends it.
        """
        return Observation(self._stub.Observe(lock_pb2.ObserveRequest(lock=name)), State._of)

    def election(self, name):
        """Returns the leader election on the lock ``name``."""
        return Election(self, name)

    def _describe(self, name, timeout=10):
        try:
            return self._stub.Describe(lock_pb2.DescribeRequest(lock=name), timeout=timeout)
        except grpc.RpcError as e:
            raise LockError(e.code(), e.details()) from None


class Observation:
    """An open Observe call: an iterator of the states of a lock (or, from
    Election.observe, of its leaders). ``cancel()`` ends it from any thread:
    the iteration then stops (StopIteration) instead of raising."""

    def __init__(self, call, convert, key=None):
        self._call = call
        self._convert = convert
        self._key = key
        self._cancelled = False
        self._first = self._read()  # raises for a bad name, at once
        self._last = None

    def _read(self):
        try:
            return next(self._call)
        except StopIteration:
            if self._cancelled:
                raise
            raise LockError(grpc.StatusCode.UNAVAILABLE,
                            "the sidecar ended the observation") from None
        except grpc.RpcError as e:
            if self._cancelled:
                raise StopIteration from None
            self._call.cancel()
            raise LockError(e.code(), e.details()) from None

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._first is not None:
                r, self._first = self._first, None
            else:
                r = self._read()
            item = self._convert(r)
            if self._key is not None:
                k = (self._key(item),)
                if k == self._last:
                    continue  # not a change of what this observation reports
                self._last = k
            return item

    def cancel(self):
        """Ends the observation; cancelling again has no effect."""
        self._cancelled = True
        self._call.cancel()

    close = cancel

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()


class Election:
    """Leader election on the lock ``name``: the leader is the lock's
    holder, and its owner label is the value it campaigned with (an address,
    say). Every process, leader or not, can follow who leads.

    As with any lease, a leader may learn late that it lost: send the lead's
    ``token`` with every write that only the leader may do."""

    def __init__(self, client, name):
        self._client = client
        self.name = name

    def campaign(self, value, *, wait=None, on_lost=None, on_queued=None):
        """Waits until it leads, and returns the Lease that leads; releasing
        it (or leaving its ``with`` block) resigns. ``value`` is the owner
        label followers see as ``Holder.owner``. ``wait``, ``on_lost`` and
        ``on_queued`` are those of Client.lock."""
        return self._client.lock(self.name, owner=value, wait=wait, on_lost=on_lost,
                                 on_queued=on_queued)

    def leader(self):
        """Returns the present leader (a Holder), or None."""
        r = self._client._describe(self.name)
        return Holder._of(r.holders[0]) if r.holders else None

    def observe(self):
        """Follows the leader: an Observation that yields the present leader
        (a Holder, or None), then the new one each time the leader
        changes."""
        call = self._client._stub.Observe(lock_pb2.ObserveRequest(lock=self.name))
        return Observation(call, lambda r: State._of(r).leader,
                           key=lambda h: h.node if h else None)


class Lease:
    """A held lock, or a permit of a semaphore. ``token`` is its fencing
    token, ``id`` its lease id, ``name`` the lock's name; ``lost`` is a
    threading.Event set if the lock is lost, with the reason in
    ``lost_reason``."""

    def __init__(self, client, name, call, granted, on_lost):
        self._client = client
        self._stub = client._stub
        self._call = call
        self.name = name
        self._on_lost = on_lost
        self._released = False
        self.id = granted.lease_id
        self.token = granted.fencing_token
        self.lost = threading.Event()
        self.lost_reason = None
        self._follower = threading.Thread(target=self._follow, daemon=True)
        self._follower.start()

    def _follow(self):
        try:
            for ev in self._call:
                if ev.WhichOneof("event") == "lost":
                    self._lose(lock_pb2.LostReason.Name(ev.lost.reason))
            if not self._released:
                self._lose("stream ended")
        except grpc.RpcError as e:
            if not self._released:
                self._lose(f"stream broke: {e.code().name}")

    def _lose(self, reason):
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        if self._on_lost:
            self._on_lost(reason)

    def reenter(self, *, on_lost=None):
        """Takes the lock again through this lease, as code that holds it
        and calls code that locks it too would: returns at once a new Lease
        with the same token and an id of its own. The lock stays held until
        this lease and every lease that re-entered it are released, in any
        order; a loss ends them all. For a semaphore, the new lease shares
        this one's permit. Raises LockError NOT_FOUND if this lease was
        released, ABORTED if it was lost."""
        return self._client.lock(self.name, reenter=self.id, on_lost=on_lost)

    def release(self, timeout=10):
        """Releases the lock and returns once ZooKeeper deleted its node.
        Raises LockError (ABORTED) if the lease was lost, whatever the
        sidecar answers: one that saw the stream end counts it as
        released."""
        self._released = True
        try:
            if self.lost.is_set():
                # Ending the stream releases whatever is left.
                raise self._lost_error()
            self._stub.Release(lock_pb2.ReleaseRequest(lease_id=self.id), timeout=timeout)
        except grpc.RpcError as e:
            if self.lost.is_set():
                raise self._lost_error() from None
            raise LockError(e.code(), e.details()) from None
        finally:
            self._call.cancel()
            # Wait for the stream's thread, unless the lease is lost: that
            # thread is then done, or in on_lost, which may be waiting for
            # this very call.
            if not self.lost.is_set() and threading.current_thread() is not self._follower:
                self._follower.join(timeout)
        if self.lost.is_set():
            raise self._lost_error()  # lost while releasing

    def _lost_error(self):
        return LockError(grpc.StatusCode.ABORTED, f"lease lost: {self.lost_reason}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.release()
        except LockError:
            if exc_type is None:
                raise

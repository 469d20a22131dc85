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
"""

import threading

import grpc
from google.protobuf import duration_pb2

from zklock.v1 import lock_pb2, lock_pb2_grpc

__all__ = ["Client", "Lease", "LockError", "LockHeld"]


class LockError(Exception):
    """A lock could not be taken or released; ``code`` is the gRPC status."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code


class LockHeld(LockError):
    """A try-once (``wait=0``) found the lock held by another."""


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

    def lock(self, name, *, shared=False, owner="", wait=None, on_lost=None, on_queued=None):
        """Waits until it holds the lock ``name`` and returns its Lease, a
        context manager that releases it.

        ``wait`` bounds the wait in seconds (None: no bound; 0: try once,
        raising LockHeld if the lock is held). ``on_queued(position,
        length)`` is called while waiting; ``on_lost(reason)`` if the lock is
        lost while held.
        """
        req = lock_pb2.AcquireRequest(lock=name, owner=owner)
        if shared:
            req.mode = lock_pb2.MODE_SHARED
        if wait is not None:
            req.wait.CopyFrom(_duration(wait))
        call = self._stub.Acquire(req)
        try:
            for ev in call:
                kind = ev.WhichOneof("event")
                if kind == "queued" and on_queued:
                    on_queued(ev.queued.position, ev.queued.queue_length)
                elif kind == "granted":
                    return Lease(self._stub, call, ev.granted, on_lost)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and wait == 0:
                raise LockHeld(e.code(), e.details()) from None
            raise LockError(e.code(), e.details()) from None
        except BaseException:
            call.cancel()
            raise
        raise LockError(grpc.StatusCode.UNKNOWN, "stream ended before the grant")


class Lease:
    """A held lock. ``token`` is its fencing token, ``id`` its lease id;
    ``lost`` is a threading.Event set if the lock is lost, with the reason
    in ``lost_reason``."""

    def __init__(self, stub, call, granted, on_lost):
        self._stub = stub
        self._call = call
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

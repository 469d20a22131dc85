"""End-to-end tests of the Python client, against the zklockd at
$ZKLOCK_ADDR (the Go e2e test TestPythonClient starts one and runs these).
The tests of a lost lease stop or kill the zklockds named by
$ZKLOCK_STOP_DAEMON and $ZKLOCK_KILL_DAEMON ("ADDR PID" each), which serve
them alone."""

import os
import queue
import signal
import threading
import time
import unittest

import grpc

import zklock

ADDR = os.environ.get("ZKLOCK_ADDR", "127.0.0.1:7878")


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.client = zklock.Client(ADDR)

    def tearDown(self):
        self.client.close()

    def test_lock_excludes_and_tokens_grow(self):
        with self.client.lock("py/demo", owner="py-a") as a:
            self.assertGreater(a.token, 0)
            self.assertEqual(len(a.id), 32)
            with self.assertRaises(zklock.LockHeld):
                self.client.lock("py/demo", wait=0)
        with self.client.lock("py/demo", wait=0) as b:
            self.assertGreater(b.token, a.token)
        self.assertFalse(a.lost.is_set())

    def test_waiter_is_granted_after_release(self):
        holder = self.client.lock("py/queue")
        order = []
        positions = []

        def wait():
            with self.client.lock("py/queue", on_queued=lambda p, n: positions.append(p)) as lease:
                order.append(lease.token)

        t = threading.Thread(target=wait)
        t.start()
        deadline = time.time() + 10
        while not positions and time.time() < deadline:
            time.sleep(0.01)
        self.assertEqual(positions[:1], [1])
        holder.release()
        t.join(10)
        self.assertEqual(len(order), 1)
        self.assertGreater(order[0], holder.token)

    def test_bad_name(self):
        with self.assertRaises(zklock.LockError) as cm:
            self.client.lock("../etc")
        self.assertIn("INVALID_ARGUMENT", str(cm.exception))


class LostTest(unittest.TestCase):
    """A lease whose sidecar goes away: on_lost is called once with the
    reason, and leaving the with block raises LockError (ABORTED)."""

    def lose(self, env, sig, check_reason):
        spec = os.environ.get(env)
        if not spec:
            self.fail(f"${env} is not set: run these through the Go test TestPythonClient")
        addr, pid = spec.split()
        client = zklock.Client(addr)
        self.addCleanup(client.close)
        reasons = queue.Queue()
        # Listeners that release their lease, from another thread they wait
        # for (as one stopping a worker would), and from on_lost itself:
        # release must not wait for the listener.
        released = queue.Queue()

        def release(lease):
            try:
                lease.release()
                released.put("returned")
            except zklock.LockError as e:
                released.put(e.code.name)
            except Exception as e:  # noqa: BLE001: any other is the failure
                released.put(repr(e))

        def from_worker(_reason):
            worker = threading.Thread(target=release, args=(others[0],))
            worker.start()
            worker.join(10)
            if worker.is_alive():
                released.put("blocked")

        others = [client.lock(f"py/lost-worker/{sig.name}", on_lost=from_worker)]
        others.append(client.lock(f"py/lost-self/{sig.name}", on_lost=lambda _r: release(others[1])))
        with self.assertRaises(zklock.LockError) as cm:
            # A lock of its own: a killed sidecar's node stays until its
            # session expires.
            with client.lock(f"py/lost/{sig.name}", on_lost=reasons.put) as lease:
                self.assertFalse(lease.lost.is_set())
                os.kill(int(pid), sig)
                reason = reasons.get(timeout=30)
                check_reason(reason)
                self.assertTrue(lease.lost.is_set())
                self.assertEqual(lease.lost_reason, reason)
        self.assertEqual(cm.exception.code, grpc.StatusCode.ABORTED)
        self.assertTrue(reasons.empty(), "on_lost called more than once")
        for _ in others:
            self.assertEqual(released.get(timeout=30), "ABORTED",
                             "release from a lost listener, or a thread it waits for")

    def test_sidecar_shut_down(self):
        self.lose("ZKLOCK_STOP_DAEMON", signal.SIGTERM,
                  lambda r: self.assertEqual(r, "LOST_REASON_SHUTDOWN"))

    def test_sidecar_killed(self):
        self.lose("ZKLOCK_KILL_DAEMON", signal.SIGKILL,
                  lambda r: self.assertTrue(r.startswith("stream broke:"), r))


if __name__ == "__main__":
    unittest.main()

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

    def other_client(self):
        other = zklock.Client(ADDR)
        self.addCleanup(other.close)
        return other

    def assert_held(self, client, name):
        with self.assertRaises(zklock.LockHeld):
            client.lock(name, wait=0).release()

    def test_reenter_keeps_token_and_lock(self):
        name = "py/reenter"
        other = self.other_client()
        a = self.client.lock(name, owner="py-a")
        b = a.reenter()
        self.assertEqual(b.token, a.token)
        self.assertEqual(len(b.id), 32)
        self.assertNotEqual(b.id, a.id)
        # A re-entered lease re-enters in turn, here by its id.
        c = self.client.lock(name, reenter=b.id)
        self.assertEqual(c.token, a.token)
        self.assertNotIn(c.id, (a.id, b.id))
        holders = self.client._describe(name).holders
        self.assertEqual([(h.fencing_token, h.reentered) for h in holders], [(a.token, 2)])
        # Nested holds keep the lock until the last one ends, in any order.
        a.release()
        self.assert_held(other, name)
        c.release()
        self.assert_held(other, name)
        b.release()
        with other.lock(name, wait=0) as d:
            self.assertGreater(d.token, a.token)
        with self.assertRaises(zklock.LockError) as cm:
            a.reenter()
        self.assertEqual(cm.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.client.lock("py/reenter-other") as e:
            with self.assertRaises(zklock.LockError) as cm:
                self.client.lock(name, reenter=e)
            self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_semaphore_of_two_with_three_contenders(self):
        name = "py/sem"
        other = self.other_client()
        s1 = self.client.semaphore(name, 2, owner="sem-1")
        s2 = other.semaphore(name, 2, owner="sem-2")
        self.assertNotEqual(s1.token, s2.token)
        with self.client.observe(name) as states:
            state = next(states)
        self.assertEqual(state.permits, 2)
        self.assertEqual({h.token for h in state.holders}, {s1.token, s2.token})

        released = threading.Event()
        queued = threading.Event()
        third = queue.Queue()

        def contend():
            try:
                lease = self.client.semaphore(name, 2, owner="sem-3",
                                              on_queued=lambda _p, _n: queued.set())
                # Granted only after a release, never while two hold it.
                third.put(lease if released.is_set() else "granted while two held it")
            except Exception as e:  # noqa: BLE001: the test reports it
                third.put(e)

        threading.Thread(target=contend, daemon=True).start()
        self.assertTrue(queued.wait(30), "the third contender never queued")
        self.assertTrue(third.empty(), "the third contender got a permit while two held them")
        with self.assertRaises(zklock.LockError) as cm:
            other.semaphore(name, 3, wait=10)
        self.assertEqual(cm.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("semaphore of 2 permits", str(cm.exception))
        self.assertIn("semaphore of 3 permits", str(cm.exception))
        released.set()
        s1.release()
        s3 = third.get(timeout=30)
        self.assertIsInstance(s3, zklock.Lease)
        self.assertGreater(s3.token, max(s1.token, s2.token))
        with s3.reenter() as inner:
            self.assertEqual(inner.token, s3.token)
        s3.release()
        s2.release()

    def test_observe_present_state_then_changes(self):
        name = "py/observe"
        with self.assertRaises(zklock.LockError) as cm:
            self.client.observe("../etc")
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        a = self.client.lock(name, owner="obs-a")
        states = self.client.observe(name)
        self.addCleanup(states.cancel)
        got = pump(states)
        first = got.get(timeout=30)
        self.assertEqual([(h.owner, h.token) for h in first.holders], [("obs-a", a.token)])
        self.assertEqual(first.queue_length, 1)
        a.release()
        self.assertEqual(got.get(timeout=30).holders, ())
        with self.client.lock(name, owner="obs-b") as b:
            leader = got.get(timeout=30).leader
            self.assertEqual((leader.owner, leader.token), ("obs-b", b.token))
            states.cancel()
            self.assertIs(got.get(timeout=30), END, "cancel() ends the iteration, without error")

    def test_election(self):
        election = self.client.election("py/election")
        other = self.other_client()
        self.assertIsNone(election.leader())
        follow = election.observe()
        self.addCleanup(follow.cancel)
        leaders = pump(follow)
        self.assertIsNone(leaders.get(timeout=30), "following starts with the present leader: none")
        a = election.campaign("10.0.0.1:8080")
        leader = leaders.get(timeout=30)
        self.assertEqual((leader.owner, leader.token), ("10.0.0.1:8080", a.token))
        self.assertEqual(election.leader().owner, "10.0.0.1:8080")

        queued = threading.Event()
        second = queue.Queue()

        def campaign():
            try:
                second.put(other.election("py/election").campaign(
                    "10.0.0.2:8080", on_queued=lambda _p, _n: queued.set()))
            except Exception as e:  # noqa: BLE001: the test reports it
                second.put(e)

        threading.Thread(target=campaign, daemon=True).start()
        self.assertTrue(queued.wait(30), "the second campaigner never queued")
        self.assertTrue(second.empty(), "the second campaigner leads while the first does")
        a.release()  # resigns
        b = second.get(timeout=30)
        self.assertIsInstance(b, zklock.Lease)
        leader = leaders.get(timeout=30)
        self.assertEqual((leader.owner, leader.token), ("10.0.0.2:8080", b.token))
        self.assertGreater(b.token, a.token)
        b.release()
        self.assertIsNone(leaders.get(timeout=30), "no leader once the second resigns")
        follow.cancel()
        self.assertIs(leaders.get(timeout=30), END, "followers see each change once")


END = object()


def pump(iterator):
    """Returns a queue that gets what iterator yields, from a thread, then
    END when it stops, or the exception it raised."""
    q = queue.Queue()

    def run():
        try:
            for item in iterator:
                q.put(item)
            q.put(END)
        except Exception as e:  # noqa: BLE001: the test reports it
            q.put(e)

    threading.Thread(target=run, daemon=True).start()
    return q


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

"""End-to-end tests of the Python client, against the zklockd at
$ZKLOCK_ADDR (the Go e2e test TestPythonClient starts one and runs these)."""

import os
import threading
import time
import unittest

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


if __name__ == "__main__":
    unittest.main()

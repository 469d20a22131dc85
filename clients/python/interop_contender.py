"""One contender of the interop tests (the Go e2e tests TestInteropCurator,
TestInteropKazoo and their read-write variants): takes a lock ROUNDS times,
through zklockd with the zklock client, or with Kazoo's Lock, ReadLock or
WriteLock directly on ZooKeeper, and reports each critical section to the
test's checker.

    interop_contender.py MODE TARGET LOCK ROUNDS CHECKER WHO

MODE is zklock or zklock-shared (the zklock client, exclusive or shared), or
kazoo, kazoo-read or kazoo-write (Kazoo's Lock, ReadLock, WriteLock). TARGET
is the zklockd address (zklock) or the ZooKeeper hosts (Kazoo); LOCK the lock
name (zklock) or its ZooKeeper path (Kazoo). Shared holds report their
sections as shared. The Kazoo locks store WHO in their nodes, so Describe
shows it as the owner.
"""

import socket
import sys
import time


def critical(f, who, token, shared=False):
    f.write(f"ENTER {who} {token}{' shared' if shared else ''}\n")
    f.flush()
    if f.readline().strip() != "OK":
        raise SystemExit(f"{who}: checker refused ENTER")
    time.sleep(0.005)
    f.write(f"EXIT {who}\n")
    f.flush()
    if f.readline().strip() != "OK":
        raise SystemExit(f"{who}: checker refused EXIT")


def read_lock(zk, path, who):
    """Returns Kazoo's ReadLock on path, with the fix of Kazoo issue 649 on
    a Kazoo older than 2.9.0.

    Before 2.9.0 a ReadLock does not count its own node (its pattern matches
    write nodes only), so it waits for the last write node in the whole
    queue, even one queued after it, which waits for the reader in turn: a
    deadlock as soon as a writer queues behind a waiting reader. Kazoo 2.9.0
    fixed it by looking only at the nodes before its own; so does this.
    Everything else, node names included, is Kazoo's.
    """
    import kazoo.version
    from kazoo.recipe.lock import ReadLock
    from kazoo.retry import ForceRetryError

    version = tuple(int(p) for p in kazoo.version.__version__.split(".")[:2])
    if version >= (2, 9):
        return ReadLock(zk, path, who)

    class FixedReadLock(ReadLock):
        def _get_predecessor(self, node):
            seq = node[len(self.prefix):]
            children = self.client.get_children(self.path)
            if node not in children:
                # Our node is gone (a session loss): let Kazoo retry.
                raise ForceRetryError()
            before = [m for m in map(self._contenders_re.search, children)
                      if m is not None and m.group(1) < seq]
            if not before:
                return None
            return max(before, key=lambda m: m.group(1)).string

    return FixedReadLock(zk, path, who)


def main():
    mode, target, lock, rounds, checker, who = sys.argv[1:7]
    host, port = checker.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s, s.makefile("rw") as f:
        if mode.startswith("kazoo"):
            from kazoo.client import KazooClient

            zk = KazooClient(hosts=target)
            zk.start()
            try:
                if mode == "kazoo":
                    lk = zk.Lock(lock, who)
                elif mode == "kazoo-read":
                    lk = read_lock(zk, lock, who)
                elif mode == "kazoo-write":
                    lk = zk.WriteLock(lock, who)
                else:
                    raise SystemExit(f"unknown mode {mode}")
                for _ in range(int(rounds)):
                    with lk:
                        critical(f, who, 0, mode == "kazoo-read")
            finally:
                zk.stop()
                zk.close()
        else:
            import zklock

            shared = mode == "zklock-shared"
            with zklock.Client(target) as client:
                for _ in range(int(rounds)):
                    with client.lock(lock, shared=shared, owner=who) as lease:
                        critical(f, who, lease.token, shared)


if __name__ == "__main__":
    main()

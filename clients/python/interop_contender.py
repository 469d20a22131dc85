"""One contender of the interop tests (the Go e2e tests TestInteropCurator
and TestInteropKazoo): takes a lock ROUNDS times, through zklockd with the
zklock client or with Kazoo's Lock directly on ZooKeeper, and reports each
critical section to the test's checker.

    interop_contender.py zklock|kazoo TARGET LOCK ROUNDS CHECKER WHO

TARGET is the zklockd address (zklock) or the ZooKeeper hosts (kazoo); LOCK
the lock name (zklock) or its ZooKeeper path (kazoo).
"""

import socket
import sys
import time


def critical(f, who, token):
    f.write(f"ENTER {who} {token}\n")
    f.flush()
    if f.readline().strip() != "OK":
        raise SystemExit(f"{who}: checker refused ENTER")
    time.sleep(0.005)
    f.write(f"EXIT {who}\n")
    f.flush()
    if f.readline().strip() != "OK":
        raise SystemExit(f"{who}: checker refused EXIT")


def main():
    mode, target, lock, rounds, checker, who = sys.argv[1:7]
    host, port = checker.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s, s.makefile("rw") as f:
        if mode == "kazoo":
            from kazoo.client import KazooClient

            zk = KazooClient(hosts=target)
            zk.start()
            try:
                lk = zk.Lock(lock, who)
                for _ in range(int(rounds)):
                    with lk:
                        critical(f, who, 0)
            finally:
                zk.stop()
                zk.close()
        else:
            import zklock

            with zklock.Client(target) as client:
                for _ in range(int(rounds)):
                    with client.lock(lock, owner=who) as lease:
                        critical(f, who, lease.token)


if __name__ == "__main__":
    main()

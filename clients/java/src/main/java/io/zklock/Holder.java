package io.zklock;

import io.zklock.v1.Contender;
import io.zklock.v1.Mode;
import java.time.Instant;

/**
 * One holder of a lock or semaphore, as ZooKeeper shows it.
 *
 * @param owner the owner label the holder gave (the leader's value in an election), or its node's
 *     data as text for a holder that is not a zklock sidecar (Curator, Kazoo)
 * @param token the holder's fencing token: the czxid of its node
 * @param node its node's name under the lock's znode (under "leases" for a semaphore)
 * @param shared whether it holds a shared (read) lock
 * @param reentered for a holder of the sidecar asked, as Describe ({@link Election#leader()})
 *     counts them: how many of its leases hold it through re-entry, beyond the first; 0 for
 *     holders of other sidecars and clients, and in the states of {@link ZkLockClient#observe}
 * @param createTime when it joined the queue
 */
public record Holder(
    String owner, long token, String node, boolean shared, int reentered, Instant createTime) {
  static Holder of(Contender c) {
    return new Holder(
        c.getOwner(),
        c.getFencingToken(),
        c.getNode(),
        c.getMode() == Mode.MODE_SHARED,
        c.getReentered(),
        Instant.ofEpochSecond(c.getCreateTime().getSeconds(), c.getCreateTime().getNanos()));
  }
}

package io.zklock;

import io.zklock.v1.DescribeRequest;
import io.zklock.v1.DescribeResponse;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Leader election on a lock: the leader is the lock's holder, and its owner label is the value it
 * campaigned with (an address, say). Every process, leader or not, can follow who leads.
 *
 * <pre>{@code
 * Election election = client.election("billing/leader");
 * try (Lease lead = election.campaign("10.0.0.7:8080", Duration.ofMinutes(5))) {
 *   serve(lead.token()); // leading until close(), which resigns
 * }
 *
 * // Elsewhere: follow the leader.
 * try (Observation o = election.observe(leader -> route(leader.map(Holder::owner)), null)) { ... }
 * }</pre>
 *
 * <p>As with any lease, a leader may learn late that it lost: send {@link Lease#token()} with
 * every write that only the leader may do.
 */
public final class Election {
  private final ZkLockClient client;
  private final String name;

  Election(ZkLockClient client, String name) {
    this.client = client;
    this.name = name;
  }

  /** Returns the name of the election's lock. */
  public String name() {
    return name;
  }

  /**
   * Waits at most timeout to become the leader, and returns the lease that leads: closing it
   * resigns. value is the owner label followers see as {@link Holder#owner()}.
   *
   * @throws LockException DEADLINE_EXCEEDED if the wait ran out, or what the sidecar answered
   */
  public Lease campaign(String value, java.time.Duration timeout) throws LockException {
    return client.lock(name, timeout, value, null);
  }

  /**
   * Like {@link #campaign(String, java.time.Duration)}; onLost is called with the reason if the
   * lead is lost (another may then lead).
   */
  public Lease campaign(String value, java.time.Duration timeout, Consumer<String> onLost)
      throws LockException {
    return client.lock(name, timeout, value, onLost);
  }

  /**
   * Returns the present leader, or empty if none.
   *
   * @throws LockException what the sidecar answered
   */
  public Optional<Holder> leader() throws LockException {
    DescribeResponse r =
        client.call(
            s ->
                s.withDeadlineAfter(10, TimeUnit.SECONDS)
                    .describe(DescribeRequest.newBuilder().setLock(name).build()));
    return r.getHoldersCount() == 0
        ? Optional.empty()
        : Optional.of(Holder.of(r.getHolders(0)));
  }

  /**
   * Follows the leader: onLeader is called with the present leader (empty if none), then each time
   * the leader changes; onEnd (may be null) as {@link ZkLockClient#observe}.
   *
   * @throws LockException what the sidecar answered
   */
  public Observation observe(Consumer<Optional<Holder>> onLeader, Consumer<LockException> onEnd)
      throws LockException {
    // Only the follower thread calls the listener: last needs no lock.
    Consumer<LockState> changes =
        new Consumer<>() {
          private boolean called;
          private String last;

          @Override
          public void accept(LockState s) {
            Optional<Holder> leader = s.leader();
            String node = leader.map(Holder::node).orElse(null);
            if (called && java.util.Objects.equals(node, last)) {
              return;
            }
            called = true;
            last = node;
            onLeader.accept(leader);
          }
        };
    return client.observe(name, changes, onEnd);
  }
}

package io.zklock;

import io.zklock.v1.ObserveResponse;
import java.util.List;
import java.util.Optional;

/**
 * Who holds a lock, as {@link ZkLockClient#observe} reports it.
 *
 * @param holders the holders in queue order: for an exclusive lock at most one, the leader of an
 *     election
 * @param queueLength how many contenders are in the queue, the holders included
 * @param permits for a semaphore, its number of permits; 0 for a lock
 */
public record LockState(List<Holder> holders, int queueLength, int permits) {
  public LockState {
    holders = List.copyOf(holders);
  }

  /** Returns the first holder: the leader, for a lock used for an election. */
  public Optional<Holder> leader() {
    return holders.isEmpty() ? Optional.empty() : Optional.of(holders.get(0));
  }

  static LockState of(ObserveResponse r) {
    return new LockState(
        r.getHoldersList().stream().map(Holder::of).toList(), r.getQueueLength(), r.getPermits());
  }
}

// Compiled (not run) by types.test.js: uses of the API that index.d.ts
// must accept, and three it must refuse.
import { Client, Holder, Lease, LeaseLostError, LockError, LockState, NotGrantedError, DEFAULT_ADDR } from '..';

async function uses(): Promise<void> {
  const client = new Client();
  const other: Client = new Client('unix:///run/zklock.sock', { channelOptions: { 'grpc.keepalive_time_ms': 20000 } });
  const addr: string = client.addr + DEFAULT_ADDR;
  const lease: Lease = await client.lock('orders/42', {
    wait: 5000,
    shared: false,
    owner: 'billing',
    signal: AbortSignal.timeout(10000),
    onQueued: (position: number, length: number) => void (position + length),
  });
  const token: bigint = lease.token;
  const id: string = lease.id;
  lease.on('lost', (err: LeaseLostError) => void err.reason);
  lease.on('suspended', () => undefined).on('resumed', () => undefined);
  lease.lost.catch((err: unknown) => err instanceof LeaseLostError);
  const lost: boolean = lease.isLost;
  const why: LeaseLostError | null = lease.lostError;
  await lease.release({ timeout: 1000 });
  const n: number = await client.withLock('orders/42', async (l: Lease) => Number(l.token), { wait: 0 });
  try {
    await client.lock('orders/42', { wait: 0 });
  } catch (err) {
    if (err instanceof NotGrantedError) {
      const c: string = err.code + err.lock;
    } else if (err instanceof LockError) {
      const c: string = err.code;
    }
  }
  const sem: Lease = await client.lock('pool', { permits: 3, wait: 0 });
  const again: Lease = await sem.reenter({ wait: 0 });
  const byId: Lease = await client.lock('pool', { reenter: process.env.ZKLOCK_LEASE ?? '' });
  const detached = await client.lock('jobs/7', { detach: true, ttl: 30_000 });
  const expires: Date | null = detached.expiresAt;
  const renewed: Date = await detached.renew();
  const kept: Promise<void> = detached.keepAlive({ signal: AbortSignal.timeout(60_000) });
  const renewedById: Date = await other.renew(detached.id);
  await other.release(detached.id);
  await kept;
  for await (const state of client.observe('pool', { signal: AbortSignal.timeout(1000) })) {
    const s: LockState = state;
    const t: bigint | undefined = s.holders[0]?.token;
    const mode: 'exclusive' | 'shared' | undefined = s.holders[0]?.mode;
    void [s.queueLength + s.permits, t, mode];
  }
  const leading: Lease = await client.campaign('leader', 'http://10.0.0.1:8080', { wait: 1000 });
  const leader: Holder | null = await client.leader('leader');
  for await (const l of client.observeLeader('leader')) {
    const owner: string | undefined = l?.owner;
    void owner;
  }
  const d = await client.describe('pool');
  const waiting: number = d.waiters.length + d.permits;
  void [again, byId, expires, renewed, renewedById, leading, leader, waiting];
  // @ts-expect-error: ttl is in milliseconds, a number
  await client.lock('jobs/7', { detach: true, ttl: '30s' });
  // @ts-expect-error: the token is a BigInt, not a number
  const wrong: number = lease.token;
  // @ts-expect-error: wait is in milliseconds, a number
  await client.lock('orders/42', { wait: '5s' });
  client.close();
  other.close();
  void [addr, token, id, lost, why, n, wrong];
}
void uses;

// Compiled (not run) by types.test.js: uses of the API that index.d.ts
// must accept, and two it must refuse.
import { Client, Lease, LeaseLostError, LockError, NotGrantedError, DEFAULT_ADDR } from '..';

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
  // @ts-expect-error: the token is a BigInt, not a number
  const wrong: number = lease.token;
  // @ts-expect-error: wait is in milliseconds, a number
  await client.lock('orders/42', { wait: '5s' });
  client.close();
  other.close();
  void [addr, token, id, lost, why, n, wrong];
}
void uses;

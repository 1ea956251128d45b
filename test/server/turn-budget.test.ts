// TurnBudget (src/server/turn-budget.ts): one turn of the event loop takes at most its budget of
// requests and one read of each connection being parsed; the other connections wait for the next
// turn, and nothing is lost. Real node:http and node:https servers on 127.0.0.1, wired as
// createApiServer wires them; eight connections whose pipelined requests are all in the kernel
// before the server's loop polls, so one poll finds them all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { TurnBudget } from '../../src/server/turn-budget.js';
import { createApiServer, type KvApi } from '../../src/server/http-api.js';
import { createLogger } from '../../src/server/logger.js';
import { Registry } from '../../src/server/metrics.js';
import { encodeMuxRequest, MUX_PATH, MUX_PROTOCOL } from '../../src/client/mux-frames.js';
import { makeTestPki } from '../transport/helpers.js';

const CONNECTIONS = 8;
const REQUESTS_PER_CONNECTION = 400;
const REQUEST = 'GET /x HTTP/1.1\r\nHost: raftkv\r\n\r\n';

interface Run {
  /** Requests parsed in each turn of the server's loop that parsed any. */
  readonly perTurn: number[];
  /** Answers each client read. */
  readonly answers: number[];
  readonly exhaustedTurns: number;
  /** Connections the budget still tracked once every client closed. */
  readonly trackedAfterClose: number;
}

/**
 * Writes `burst` on every client while this loop is held, so that all of it is in the server's
 * kernel buffers when the loop next polls (loopback delivers within the write), then waits until
 * `served()` reaches `total`. Returns how many more `served()` counted in each turn that counted
 * any: an immediate re-armed from the check phase runs once a turn.
 */
async function floodAtOnce(clients: readonly Socket[], burst: Buffer | string, served: () => number, total: number): Promise<number[]> {
  const perTurn: number[] = [];
  let last = served();
  let isCounting = true;
  const count = (): void => {
    const now = served();
    if (now > last) perTurn.push(now - last);
    last = now;
    if (isCounting) setImmediate(count);
  };
  setImmediate(count);
  for (const c of clients) c.write(burst);
  const until = performance.now() + 50;
  while (performance.now() < until);
  const deadline = Date.now() + 10_000;
  while (served() < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  isCounting = false;
  return perTurn;
}

async function flood(secure: boolean, budget: TurnBudget | null): Promise<Run> {
  const pki = secure ? makeTestPki() : null;
  let parsed = 0;
  const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    budget?.spend();
    parsed++;
    res.end('ok');
  };
  const server: Server = pki !== null ? (createHttpsServer({ cert: pki.nodes.get('n1')!.cert, key: pki.nodes.get('n1')!.key }, onRequest) as unknown as Server) : createHttpServer(onRequest);
  let accepted = 0;
  server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
    accepted++;
    budget?.track(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients: Socket[] = [];
  const answers = new Array<number>(CONNECTIONS).fill(0);
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const socket: Socket = pki !== null ? tls.connect({ host: '127.0.0.1', port, ca: pki.ca }) : net.connect({ host: '127.0.0.1', port });
      await new Promise<void>((resolve, reject) => {
        socket.once(secure ? 'secureConnect' : 'connect', resolve);
        socket.once('error', reject);
      });
      socket.on('data', (chunk: Buffer) => (answers[i]! += chunk.toString('latin1').split('HTTP/1.1 200').length - 1));
      clients.push(socket);
    }
    while (accepted < CONNECTIONS) await new Promise((r) => setTimeout(r, 5));
    const perTurn = await floodAtOnce(clients, REQUEST.repeat(REQUESTS_PER_CONNECTION), () => parsed, CONNECTIONS * REQUESTS_PER_CONNECTION);
    // Answers are counted as the clients read them, after the server parsed the last request.
    const deadline = Date.now() + 10_000;
    while (answers.reduce((a, b) => a + b, 0) < CONNECTIONS * REQUESTS_PER_CONNECTION && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // The budget forgets each connection as it closes.
    for (const c of clients) c.destroy();
    const closing = Date.now() + 5000;
    while ((budget?.size ?? 0) > 0 && Date.now() < closing) await new Promise((r) => setTimeout(r, 10));
    return { perTurn, answers, exhaustedTurns: budget?.exhaustedTurns ?? 0, trackedAfterClose: budget?.size ?? 0 };
  } finally {
    for (const c of clients) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

for (const secure of [false, true]) {
  const kind = secure ? 'https' : 'http';
  test(`${kind}: one turn parses at most the budget and one read of a connection; the others wait for the next turn and every request is answered`, { timeout: 30_000 }, async (t) => {
    const perTurn = 100;
    const run = await flood(secure, new TurnBudget(perTurn));
    t.diagnostic(`requests parsed per turn: ${run.perTurn.join(', ')}`);
    assert.deepEqual(run.answers, new Array(CONNECTIONS).fill(REQUESTS_PER_CONNECTION), 'every request answered on its own connection');
    const most = Math.max(...run.perTurn);
    assert.ok(most < perTurn + REQUESTS_PER_CONNECTION, `a turn parsed ${most} requests (turns: ${run.perTurn.join(', ')}); the budget is ${perTurn} and one read holds at most ${REQUESTS_PER_CONNECTION}`);
    assert.ok(run.exhaustedTurns >= CONNECTIONS - 1, `the budget ran out in ${run.exhaustedTurns} turns`);
    assert.equal(run.trackedAfterClose, 0, 'closed connections are forgotten');
  });

  test(`${kind}: without the budget the same flood is parsed in one turn (the test above can fail)`, { timeout: 30_000 }, async (t) => {
    const run = await flood(secure, null);
    t.diagnostic(`requests parsed per turn: ${run.perTurn.join(', ')}`);
    assert.deepEqual(run.answers, new Array(CONNECTIONS).fill(REQUESTS_PER_CONNECTION));
    const most = Math.max(...run.perTurn);
    assert.ok(most >= 2 * REQUESTS_PER_CONNECTION, `one turn parsed ${most} requests (turns: ${run.perTurn.join(', ')})`);
  });
}

/**
 * createApiServer's own budget (512 a turn) over plain HTTP and over raftkv-mux: eight connections
 * whose requests are all in the kernel when the loop polls. Counted where they are served.
 */
for (const wire of ['http', 'raftkv-mux'] as const) {
  test(`createApiServer: ${wire} requests from eight connections at once are served over several turns, at most 512 and one read in each`, { timeout: 30_000 }, async (t) => {
    // Under the 256 unsent answers a pipelining HTTP connection may have; raftkv-mux has no such cut.
    const each = wire === 'http' ? 200 : 400;
    let served = 0;
    const api = { status: () => (served++, { id: 'n1', role: 'leader', term: 1 }), clusterId: () => null, leaderUrl: () => null } as unknown as KvApi;
    const server = createApiServer({ nodeId: 'n1', logger: createLogger('error', {}, () => undefined), registry: new Registry(), api }).server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const clients: Socket[] = [];
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = net.connect({ host: '127.0.0.1', port });
        socket.on('error', () => undefined);
        await new Promise((resolve) => socket.once('connect', resolve));
        if (wire === 'raftkv-mux') {
          socket.write(`GET ${MUX_PATH} HTTP/1.1\r\nHost: raftkv\r\nConnection: Upgrade\r\nUpgrade: ${MUX_PROTOCOL}\r\n\r\n`);
          await new Promise((resolve) => socket.once('data', resolve));
        }
        socket.on('data', () => undefined);
        clients.push(socket);
      }
      const burst = wire === 'http' ? Buffer.from('GET /v1/status HTTP/1.1\r\nHost: raftkv\r\n\r\n'.repeat(each)) : Buffer.concat(Array.from({ length: each }, (_, i) => encodeMuxRequest(i, 'GET', '/v1/status', {}, undefined)));
      const perTurn = await floodAtOnce(clients, burst, () => served, CONNECTIONS * each);
      t.diagnostic(`served per turn: ${perTurn.join(', ')}`);
      assert.equal(served, CONNECTIONS * each, 'every request served');
      const most = Math.max(...perTurn);
      assert.ok(most < 512 + each, `a turn served ${most} (turns: ${perTurn.join(', ')})`);
    } finally {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
}

test('TurnBudget refuses a budget that is not a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new TurnBudget(bad), RangeError);
});

// "Did my write happen?" (issue 10): a proposal whose outcome is unknown answers 504 (retry with
// the same idempotency key, or look), one that surely was not applied answers 503 (safe to
// retry). Membership changes and key-value writes decide it the same way, by the error's
// outcome, never by searching its message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from '../../src/raft/index.js';
import { Waiters } from '../../src/node/waiters.js';
import { membershipRoutes, type MembershipOptions } from '../../src/server/membership.js';
import { errorReply } from '../../src/server/http-util.js';
import type { ParsedRequest } from '../../src/server/http-api.js';

/** A membership route over a node whose change is overtaken by a snapshot (or replaced). */
async function removeWhile(settle: (w: Waiters<unknown>) => void): Promise<{ status: number; code: string }> {
  const waiters = new Waiters<unknown>();
  const node = {
    id: 'n1',
    isLeader: true,
    leaderId: 'n1',
    config: { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] },
    status: () => ({ isChangePending: false, leadTransferee: null }),
    changeMembership: () => {
      const applied = waiters.proposal(7, 2);
      settle(waiters);
      return applied;
    },
  };
  const routes = membershipRoutes({ node, service: {}, stateMachine: {}, forward: async () => ({ status: 503, headers: {}, body: new Uint8Array(0) }) } as unknown as MembershipOptions<unknown>);
  const r: ParsedRequest = { method: 'DELETE', path: '/v1/members/n3', query: new URLSearchParams(), headers: {}, body: new Uint8Array(0), deadline: Date.now() + 1000, principal: null };
  let reply;
  try {
    reply = await routes(r)!;
  } catch (err) {
    reply = errorReply(err);
  }
  return { status: reply.status, code: (reply.json as { error: { code: string } }).error.code };
}

test('a membership change overtaken by a snapshot has an unknown outcome (504), not "not applied" (503): it may have committed', async () => {
  const got = await removeWhile((w) => w.rejectProposalsUpTo(10));
  assert.deepEqual(got, { status: 504, code: 'TIMEOUT' });
});

test("a membership change whose entry another leader's replaced was not applied (503): safe to retry", async () => {
  const other: Entry = { index: 7, term: 3, type: 'normal', data: new Uint8Array(0) };
  const got = await removeWhile((w) => w.applied(other, undefined));
  assert.deepEqual(got, { status: 503, code: 'NO_LEADER' });
});

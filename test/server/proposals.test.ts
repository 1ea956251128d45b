// Forwarded proposals (src/server/proposals.ts): the batch and answer formats round-trip, anything
// malformed is refused with an Error (never a crash, never a half-read batch), a refusal can never
// claim an unknown outcome, and a follower matches its entry even when it applied before the
// leader's answer came (src/node/waiters.ts RecentlyApplied).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RecentlyApplied, Waiters } from '../../src/node/waiters.js';
import { ProposalDroppedError, type Entry } from '../../src/raft/index.js';
import { decodeProposals, decodeProposalsAnswer, encodeProposals, encodeProposalsAnswer, PROPOSALS_KIND, type ForwardedProposal, type ProposalsAnswer } from '../../src/server/proposals.js';

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

test('a batch of commands and their principals round-trips', () => {
  const proposal = fc.record({ command: fc.uint8Array({ minLength: 1, maxLength: 64 }), principal: fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: null }) });
  fc.assert(
    fc.property(fc.array(proposal, { minLength: 1, maxLength: 50 }), (proposals) => {
      const plain = (ps: readonly ForwardedProposal[]): unknown[] => ps.map((p) => ({ command: [...p.command], principal: p.principal }));
      assert.deepEqual(plain(decodeProposals(encodeProposals(proposals))), plain(proposals));
    }),
  );
});

test('a malformed batch is refused whole: empty, cut short, an empty command, trailing bytes, another kind, too many commands', () => {
  const good = encodeProposals([{ command: bytes(1, 2, 3), principal: 'app' }, { command: bytes(4), principal: null }]);
  const cases: Record<string, Uint8Array> = {
    empty: new Uint8Array(0),
    'no commands': encodeProposals([]),
    'cut short': good.subarray(0, good.length - 1),
    'trailing bytes': Uint8Array.from([...good, 0]),
    'another kind': Uint8Array.from([0x01, ...good.subarray(1)]),
    'an empty command': Uint8Array.from([PROPOSALS_KIND, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    'a length past the end': Uint8Array.from([PROPOSALS_KIND, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 1]),
    'a principal past the end': Uint8Array.from([PROPOSALS_KIND, 0, 0, 0, 1, 0, 9, 0x61, 0, 0, 0, 1, 1]),
    'a principal that is not UTF-8': Uint8Array.from([PROPOSALS_KIND, 0, 0, 0, 1, 0, 1, 0xff, 0, 0, 0, 1, 1]),
    'too many commands': Uint8Array.from([PROPOSALS_KIND, 0, 0, 0x10, 0, 0, 0, 0, 1, 1]),
  };
  for (const [what, b] of Object.entries(cases)) assert.throws(() => decodeProposals(b), Error, what);
});

test('any bytes decode to a batch or an Error, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      const withKind = b.length > 0 ? Uint8Array.from([PROPOSALS_KIND, ...b.subarray(1)]) : b;
      for (const input of [b, withKind]) {
        try {
          for (const p of decodeProposals(input)) assert.ok(p.command.length > 0);
        } catch (err) {
          assert.ok(err instanceof Error);
        }
        try {
          decodeProposalsAnswer(input, 2);
        } catch (err) {
          assert.ok(err instanceof Error);
        }
      }
    }),
  );
});

test('answers round-trip: appended at an index, refused with a code, or not the leader', () => {
  const answers: ProposalsAnswer[] = [
    { term: 7, outcomes: [{ index: 100 }, { code: 'BAD_REQUEST', message: 'the command was rejected: unknown tag 0xfe' }, { index: 2 ** 48 }] },
    { term: 1, outcomes: [{ code: 'NO_SPACE', message: 'é✓ the store is full' }] },
    { notLeader: 'n2 is not the leader' },
  ];
  for (const a of answers) {
    const n = 'outcomes' in a ? a.outcomes.length : 0;
    assert.deepEqual(decodeProposalsAnswer(encodeProposalsAnswer(a), n), a);
  }
});

test('an answer with the wrong number of outcomes, a bad index or term, or trailing bytes is refused', () => {
  const a = encodeProposalsAnswer({ term: 3, outcomes: [{ index: 5 }, { index: 6 }] });
  assert.throws(() => decodeProposalsAnswer(a, 1), /malformed/, 'more outcomes than proposals');
  assert.throws(() => decodeProposalsAnswer(a, 3), /malformed/, 'fewer outcomes than proposals');
  for (const bad of [0, -1, 1.5, NaN, 2 ** 53]) {
    const b = Uint8Array.from(a);
    new DataView(b.buffer).setFloat64(11, bad);
    assert.throws(() => decodeProposalsAnswer(b, 2), /malformed/, `index ${bad}`);
    const t = Uint8Array.from(a);
    new DataView(t.buffer).setFloat64(2, bad);
    assert.throws(() => decodeProposalsAnswer(t, 2), /malformed/, `term ${bad}`);
  }
});

test('a refusal never says the outcome is unknown: a 504 code or one not in the table becomes INTERNAL', () => {
  const answer = decodeProposalsAnswer(
    encodeProposalsAnswer({ term: 2, outcomes: [{ code: 'TIMEOUT', message: 'x' }, { code: 'NOT_A_CODE' as 'INTERNAL', message: 'y' }, { code: 'COMPARE_FAILED', message: 'z' }] }),
    3,
  );
  assert.ok('outcomes' in answer);
  assert.deepEqual(
    answer.outcomes.map((o) => ('code' in o ? o.code : null)),
    ['INTERNAL', 'INTERNAL', 'COMPARE_FAILED'],
  );
});

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array(0) });

test('recently applied results are found by index and term, and forgotten once overwritten', () => {
  const recent = new RecentlyApplied<string>(4);
  for (let i = 1; i <= 6; i++) recent.record(entry(i, i < 4 ? 1 : 2), `r${i}`);
  assert.deepEqual(recent.get(6), { term: 2, result: 'r6' });
  assert.deepEqual(recent.get(3), { term: 1, result: 'r3' });
  assert.equal(recent.get(2), undefined, 'index 2 was overwritten by index 6');
  assert.equal(recent.get(7), undefined, 'never applied');
});

test('a newer term\'s wait at an index someone already waits on settles the older one as unknown, not as dropped', async () => {
  const waiters = new Waiters<string>();
  const forwarded = waiters.proposal(10, 3);
  const own = waiters.proposal(10, 4);
  await assert.rejects(forwarded, (err: unknown) => err instanceof ProposalDroppedError && err.outcome === 'unknown');
  assert.equal(waiters.applied(entry(10, 4), 'mine'), true);
  assert.deepEqual(await own, { index: 10, result: 'mine' });
});

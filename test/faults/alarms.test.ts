// The fault harness fails a run whose node logs hold RaftNode's Leader Completeness alarm (a
// member refused a leader whose log contradicts entries it knows committed). The alarm itself is
// raised on a real member by test/adversary/peer-port.test.ts; here, the scan of the logs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LEADER_COMPLETENESS_ALARM } from '../../src/node/index.js';
import { leaderCompletenessAlarms } from '../../src/faults/run.js';

test('§5.4.3 the fault harness reports every node log line that raises the Leader Completeness alarm, and nothing else', () => {
  const alarm = JSON.stringify({ level: 'warn', msg: LEADER_COMPLETENESS_ALARM, from: 'n1', term: 7 });
  const found = leaderCompletenessAlarms([
    { id: 'n1', log: '{"level":"info","msg":"core started"}\n--- harness: n1 exited code=null signal=SIGKILL\n' },
    { id: 'n2', log: `{"level":"info","msg":"role changed"}\n${alarm}\n{"level":"warn","msg":"something else"}\n${alarm}\n` },
    { id: 'n3', log: '' },
  ]);
  assert.deepEqual(found, [`n2: ${alarm}`, `n2: ${alarm}`]);
  assert.deepEqual(leaderCompletenessAlarms([{ id: 'n1', log: 'refused a leader\n' }]), []);
});

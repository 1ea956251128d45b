// The metrics registry's page against the strict exposition reader (exposition.ts), and the
// reader against broken pages, so the metrics tests can fail: label values with quotes, braces,
// backslashes and line breaks come out escaped and read back; a counter not named *_total, a
// sample before its TYPE, a series twice, buckets that shrink or a _count off the +Inf bucket are
// each refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, ReadCounter, Registry } from '../../src/server/metrics.js';
import { parseExposition } from './exposition.js';

test('a page of every kind, with hostile label values, reads back exactly', () => {
  const r = new Registry();
  const c = r.register(new Counter('t_requests_total', 'requests'));
  c.inc({ route: '/v1/kv/{key}', status: '200' });
  c.inc({ route: 'say "hi"\\ there\nnext', status: '500' }, 2);
  r.register(new Gauge('t_peers', 'by peer', () => [[{ peer: 'a' }, 1], [{ peer: 'b}' }, 0.5]]));
  r.register(new ReadCounter('t_bytes_total', 'bytes', () => 7));
  const h = r.register(new Histogram('t_latency_seconds', 'latency', [0.1, 1]));
  h.touch({ route: 'idle' });
  h.observe(0.05, { route: 'x' });
  h.observe(5, { route: 'x' });
  const e = parseExposition(r.render());
  assert.equal(e.samples.get('t_requests_total{route="/v1/kv/{key}",status="200"}'), 1);
  assert.equal(e.samples.get('t_requests_total{route="say \\"hi\\"\\\\ there\\nnext",status="500"}'), 2);
  assert.equal(e.samples.get('t_peers{peer="b}"}'), 0.5);
  assert.equal(e.samples.get('t_latency_seconds_bucket{route="x",le="1"}'), 1);
  assert.equal(e.samples.get('t_latency_seconds_count{route="x"}'), 2);
  assert.equal(e.samples.get('t_latency_seconds_count{route="idle"}'), 0);
  assert.deepEqual([...e.types], [['t_requests_total', 'counter'], ['t_peers', 'gauge'], ['t_bytes_total', 'counter'], ['t_latency_seconds', 'histogram']]);
});

const BROKEN: [string, string, RegExp][] = [
  ['a counter not named _total', '# HELP a_count x\n# TYPE a_count counter\na_count 1\n', /not named \*_total/],
  ['a sample before its TYPE', '# HELP a_total x\na_total 1\n# TYPE a_total counter\n', /before its TYPE/],
  ['a series twice', '# HELP a x\n# TYPE a gauge\na{k="v"} 1\na{k="v"} 2\n', /series twice/],
  ['a sample of another family', '# HELP a x\n# TYPE a gauge\nb 1\n', /not of the family/],
  ['a family declared twice', '# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n# HELP a x\n', /declared again/],
  ['buckets that shrink', '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n', /not cumulative/],
  ['_count off the +Inf bucket', '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', /_count 3/],
  ['no +Inf bucket', '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no \+Inf/],
  ['a negative counter', '# HELP a_total x\n# TYPE a_total counter\na_total -1\n', /below 0/],
  ['a bad value', '# HELP a x\n# TYPE a gauge\na 1,5\n', /not a number/],
  ['an unescaped quote in a label', '# HELP a x\n# TYPE a gauge\na{k="say "hi""} 1\n', /not a sample line|malformed/],
  ['no HELP', '# TYPE a gauge\na 1\n', /no HELP/],
  ['no final line break', '# HELP a x\n# TYPE a gauge\na 1', /line break/],
];

for (const [what, page, error] of BROKEN) {
  test(`the reader refuses ${what}`, () => {
    assert.throws(() => parseExposition(page), error);
  });
}

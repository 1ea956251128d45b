// TickClock (src/node/tick-clock.ts): a host gives its core the ticks its clock says are due,
// not one per timer callback, so a held loop cannot make the core count less time than passed
// (thesis §6.4.1: the leader lease is bounded by time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CATCH_UP_ELECTIONS, TickClock } from '../../src/node/tick-clock.js';

test('thesis §6.4.1 ticks follow the clock: one per interval on time, every missed one after a hold, none twice', () => {
  const clock = new TickClock(50, 20, 1_000);
  assert.equal(clock.take(1_000), 0, 'none at the origin');
  assert.equal(clock.take(1_049.9), 0);
  assert.equal(clock.take(1_050), 1, 'due exactly at one interval');
  assert.equal(clock.take(1_050), 0, 'not given twice');
  assert.equal(clock.take(1_100.2), 1);
  // The loop was held 400 ms: the eight ticks that came due meanwhile, at once.
  assert.equal(clock.take(1_500.5), 8);
  assert.equal(clock.take(1_520), 0);
  // Timers that fire a little late or early neither lose nor add ticks over time.
  let given = 10;
  for (let t = 1_550.7; t < 11_000; t += 50) given += clock.take(t);
  assert.equal(given, Math.floor((10_950.7 - 1_000) / 50));
});

test('after a very long hold the catch-up is bounded: more ticks than every timeout in the core would change nothing', () => {
  const clock = new TickClock(50, 20, 0);
  assert.equal(clock.take(3_600_000), MAX_CATCH_UP_ELECTIONS * 20, 'an hour held: six election timeouts of ticks');
  assert.equal(clock.take(3_600_050), 1, 'and on time from there');
  assert.throws(() => new TickClock(0, 20, 0), /positive/);
});

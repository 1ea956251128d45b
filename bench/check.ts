// npm run bench:check — how long the linearizability checker takes on the history size issue 6
// names: 10,000 operations over 10 keys from 10 clients (key-value model), recorded from a
// simulated linearizable execution, without and with timed-out (unknown-outcome) operations.
// Prints the median of several seeds per setting.
import { checkHistory, kvModel } from '../src/check/index.js';
import { simulateKvHistory } from '../test/check/simulate.js';

const SEEDS = [1, 2, 3, 4, 5];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const unknownRate of [0, 0.01, 0.05]) {
  const ms: number[] = [];
  const steps: number[] = [];
  for (const seed of SEEDS) {
    const history = simulateKvHistory({ seed, ops: 10_000, clients: 10, keys: 10, unknownRate, maxLatency: 20, deletes: true });
    const started = performance.now();
    const result = checkHistory(kvModel, history, { timeLimitMs: 120_000 });
    ms.push(performance.now() - started);
    steps.push(result.stats.steps);
    if (result.outcome !== 'linearizable') throw new Error(`seed ${seed}: expected linearizable, got ${result.outcome}`);
  }
  console.log(
    `10,000 ops, 10 keys, 10 clients, ${(unknownRate * 100).toFixed(0)}% unknown outcomes: ` +
      `median ${median(ms).toFixed(0)} ms (runs ${ms.map((x) => x.toFixed(0)).join(', ')} ms), median ${median(steps).toLocaleString('en-US')} search steps`,
  );
}

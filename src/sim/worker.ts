// A worker thread of the seed pool: receives seeds one at a time, runs each, posts the result.
import { parentPort, workerData } from 'node:worker_threads';
import type { SimOptions } from './options.js';
import { runSeed } from './simulation.js';

const base = workerData as Omit<SimOptions, 'seed' | 'trace'>;
const port = parentPort;
if (port === null) throw new Error('sim/worker.js must run as a worker thread');
port.on('message', (seed: number) => {
  port.postMessage(runSeed({ ...base, seed }));
});

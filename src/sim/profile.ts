// Per-run variety drawn from the seed: how fast the network, disk and client are, how often
// faults come, when snapshots are taken and how tight flow control is. One seed, one character.
import { Rng, STREAMS } from './random.js';

/** Per-run variety, drawn from the seed: how fast the network, disk and client are. */
export interface RunProfile {
  baseLatencyMs: number;
  jitterMs: number;
  clientIntervalMs: number;
  readIntervalMs: number;
  faultIntervalMs: number;
  maxBatch: number;
  snapshotEvery: number;
  snapshotKeep: number;
  maxBytesPerMessage: number;
  maxInflightMessages: number;
}

/** (bytes per AppendEntries, messages in flight) pairs, from the core's defaults to tight ones. */
const FLOW_CONTROL = [
  { maxBytesPerMessage: 1 << 20, maxInflightMessages: 256 },
  { maxBytesPerMessage: 4096, maxInflightMessages: 64 },
  { maxBytesPerMessage: 256, maxInflightMessages: 4 },
  { maxBytesPerMessage: 64, maxInflightMessages: 16 },
] as const;
export function drawProfile(seed: number): RunProfile {
  const p = new Rng(seed, STREAMS.profile);
  return {
    baseLatencyMs: p.range(0.5, 5),
    jitterMs: p.range(0, 15),
    clientIntervalMs: p.range(3, 40),
    readIntervalMs: p.range(20, 300),
    faultIntervalMs: p.range(100, 1500),
    maxBatch: 1 + p.int(4),
    snapshotEvery: 16 + p.int(200),
    snapshotKeep: p.int(40),
    // Tight flow control now and then: few entries per AppendEntries, few in flight, so
    // followers' match points land on every index, not only on batch ends.
    ...p.pick(FLOW_CONTROL),
  };
}

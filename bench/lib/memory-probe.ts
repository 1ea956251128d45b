// Preloaded into each raftkv node by the scale benchmark (`node --import <this file> main.js
// serve ...`), so the bench can see inside the node without a change to raftkv: once a second it
// writes process.memoryUsage() and its pid, as JSON, to `<--data-dir>.memory.json` (beside the
// data dir, not in it). The timer is unref'd: it never keeps a node alive.
import { renameSync, writeFileSync } from 'node:fs';

const at = process.argv.indexOf('--data-dir');
const dataDir = at >= 0 ? process.argv[at + 1] : undefined;
if (dataDir !== undefined) {
  const file = `${dataDir}.memory.json`;
  const write = (): void => {
    try {
      // Written whole and renamed, so a reader never sees half a sample.
      writeFileSync(`${file}.tmp`, JSON.stringify({ pid: process.pid, time: Date.now(), ...process.memoryUsage() }));
      renameSync(`${file}.tmp`, file);
    } catch {
      // The root is being removed, or the disk is full: the bench reads "no sample".
    }
  };
  write();
  setInterval(write, 1000).unref();
}

// Crash tests with real processes: a child appends and syncs in a loop and reports each synced
// last index; the parent SIGKILLs it at a random moment and checks, after reopening, that every
// acknowledged index survived and the log is contiguous and intact (Figure 2: persist before
// acknowledging). The same directories are crashed repeatedly, so repairs are exercised too.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileStorage } from '../../src/storage/index.js';
import { entry, plain } from './conformance.js';
import { RecordingLogger, TempDirs } from './helpers.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const DIRECTORIES = 5;
const KILLS_PER_DIRECTORY = 11;
const temp = new TempDirs();
after(() => temp.removeAll());

interface Run {
  readonly acknowledged: number;
  readonly stderr: string;
}

/** Starts the child, waits for it to be ready, kills it after `delayMs`, returns its last ack. */
function runAndKill(dir: string, seed: number, delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acknowledged = 0;
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('ready')) killTimer ??= setTimeout(() => child.kill('SIGKILL'), delayMs);
        else acknowledged = Math.max(acknowledged, Number(line));
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(deadline);
      clearTimeout(killTimer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited without being killed: ${stderr}`));
      else resolve({ acknowledged, stderr });
    });
  });
}

test('every acknowledged index survives SIGKILL at a random moment, 55 times', { timeout: 90_000 }, async () => {
  let random = 2024;
  const next = (bound: number): number => {
    random = (random * 1103515245 + 12345) & 0x7fffffff;
    return random % bound;
  };
  let kills = 0;
  let acknowledgedTotal = 0;
  for (let d = 0; d < DIRECTORIES; d++) {
    const dir = temp.make();
    let acknowledged = 0;
    for (let k = 0; k < KILLS_PER_DIRECTORY; k++) {
      const delayMs = 10 + next(191);
      const run = await runAndKill(dir, next(1_000_000) + 1, delayMs);
      for (const line of run.stderr.split('\n').filter((l) => l !== '')) {
        assert.match(line, /torn write|WAL records a snapshot/, 'the child reported no error');
      }
      acknowledged = Math.max(acknowledged, run.acknowledged);
      acknowledgedTotal += run.acknowledged > 0 ? 1 : 0;
      kills++;

      const logger = new RecordingLogger();
      const storage = await FileStorage.open(dir, { segmentBytes: 16 * 1024, logger });
      const state = await storage.load();
      await storage.close();
      const lastIndex = state.entries.at(-1)?.index ?? state.applied;
      const context = `dir ${d}, kill ${k} after ${delayMs} ms`;
      assert.ok(lastIndex >= acknowledged, `${context}: acknowledged ${acknowledged} but recovered only up to ${lastIndex}`);
      assert.ok(state.hardState.commitIndex >= acknowledged, `${context}: hard state lost`);
      assert.ok(state.entries.length === 0 || state.entries[0]!.index === state.applied + 1, `${context}: log joins the snapshot`);
      state.entries.forEach((e, i) => {
        assert.equal(e.index, state.applied + 1 + i, `${context}: contiguous`);
        // Entry bytes are a function of index and term (see conformance.entry): intact, not torn.
        assert.deepEqual(plain([e]), plain([entry(e.index, e.term, e.data.length)]));
        if (i > 0) assert.ok(e.term >= state.entries[i - 1]!.term, `${context}: terms never decrease`);
      });
      for (const warning of logger.warnings) assert.match(warning, /torn write|WAL records a snapshot/);
    }
  }
  assert.ok(kills >= 50);
  assert.ok(acknowledgedTotal >= kills / 2, `most runs acknowledged something (${acknowledgedTotal}/${kills})`);
});

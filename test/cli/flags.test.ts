// A flag's `choices` are enforced where flags are parsed, for every command at once: a value
// outside them, from the command line or the environment, is a one-line usage error naming the
// flag (or the variable), before any command runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, parseFlags, type FlagTable } from '../../src/cli/flags.js';
import { ClientUsageError, parseCommand } from '../../src/cli/client-args.js';
import { CLIENT_COMMAND_TABLE } from '../../src/cli/client-commands.js';
import { SERVE_FLAGS } from '../../src/cli/serve.js';
import { CLUSTER_FLAGS } from '../../src/cli/cluster.js';

const TABLE: FlagTable = {
  mode: { type: 'string', description: 'a mode', choices: ['fast', 'safe'] },
  name: { type: 'string', description: 'free text' },
  loud: { type: 'boolean', description: 'a switch' },
};

test('parseFlags refuses a value outside its choices, from argv or the environment, naming where it came from', () => {
  assert.equal(parseFlags(['--mode', 'safe'], TABLE, {}).values['mode'], 'safe');
  assert.equal(parseFlags([], TABLE, { RAFTKV_MODE: 'fast' }).values['mode'], 'fast');
  assert.equal(parseFlags(['--name', 'anything at all'], TABLE, {}).values['name'], 'anything at all');
  assert.throws(() => parseFlags(['--mode', 'quick'], TABLE, {}), (err: unknown) => err instanceof UsageError && err.message === '--mode must be one of fast, safe, not "quick"');
  assert.throws(() => parseFlags(['--mode=Fast'], TABLE, {}), /--mode must be one of fast, safe, not "Fast"/);
  assert.throws(() => parseFlags([], TABLE, { RAFTKV_MODE: 'quick' }), (err: unknown) => err instanceof UsageError && err.message === 'RAFTKV_MODE must be one of fast, safe, not "quick"');
  // The command line wins over the environment, so a bad variable under a good flag is not read.
  assert.equal(parseFlags(['--mode', 'fast'], TABLE, { RAFTKV_MODE: 'quick' }).values['mode'], 'fast');
  // The last of repeated flags is the one checked and kept.
  assert.throws(() => parseFlags(['--mode', 'fast', '--mode', 'slow'], TABLE, {}), /not "slow"/);
});

test('cluster refuses a --log-level it would pass to its nodes before starting any', () => {
  assert.throws(() => parseFlags(['--log-level', 'loud'], CLUSTER_FLAGS, {}), /--log-level must be one of debug, info, warn, error, not "loud"/);
});

test('every serve flag with choices refuses a value outside them at parsing', () => {
  const withChoices = Object.entries(SERVE_FLAGS).filter(([, def]) => def.choices !== undefined);
  assert.ok(withChoices.length >= 3, 'log-level, auto-compaction-mode and snapshot-stagger at least');
  for (const [name, def] of withChoices) {
    for (const good of def.choices!) assert.equal(parseFlags([`--${name}`, good], SERVE_FLAGS, {}).values[name], good);
    assert.throws(() => parseFlags([`--${name}`, 'no-such-choice'], SERVE_FLAGS, {}), (err: unknown) => err instanceof UsageError && err.message.startsWith(`--${name} must be one of `), name);
  }
});

test('client commands refuse a value outside a flag\'s choices with a ClientUsageError naming the flag', () => {
  const get = CLIENT_COMMAND_TABLE.get.options;
  assert.equal(parseCommand('get', ['k', '-w', 'json'], get).values['write-out'], 'json');
  assert.throws(() => parseCommand('get', ['k', '-w', 'yaml'], get), (err: unknown) => err instanceof ClientUsageError && err.message === '--write-out must be one of simple, json, table, not "yaml"');
  assert.throws(() => parseCommand('get', ['k', '--consistency', 'strong'], get), /--consistency must be one of linearizable, lease, stale, not "strong"/);
});

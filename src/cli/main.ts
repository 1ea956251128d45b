#!/usr/bin/env node
// The `raftkv` command: serve one node, run a local cluster, or talk to a cluster as a client.
// Bad usage prints one line naming the problem and exits 2; nothing is written.
import { runCluster, type Io } from './cluster.js';
import { runClientCommand } from './client-commands.js';
import { UsageError } from './flags.js';
import { runServe } from './serve.js';

const USAGE = `usage: raftkv <command> [flags]
  serve     --id ID --data-dir DIR --peer-addr HOST:PORT --client-addr HOST:PORT --initial-cluster ID=HOST:PORT,...
  cluster   [--nodes 3] [--dir ./data] [--base-port 7000] [--secure] [--ui-port BASE] [--no-ui]
            (--secure: its own CA, node certificates and tokens; HTTPS and mutual TLS between nodes)
  put KEY VALUE | get KEY | del KEY | list PREFIX | watch KEY|--prefix P | status | members ... | leader transfer
            [--endpoints URL,URL] [--json] [--token T] [--cacert FILE] [--cert FILE --key FILE]
            (status exits 1 when no endpoint is ready: the cluster has no quorum)
Every flag may also come from the environment: --data-dir is RAFTKV_DATA_DIR, --token is RAFTKV_TOKEN,
--cacert is RAFTKV_CACERT, and so on. Prefer RAFTKV_TOKEN to --token: other users can read a command line.
\`raftkv <client command> --help\` shows that command's flags.`;

const io: Io = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest, io);
    case 'cluster':
      return runCluster(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      return runClientCommand(argv, io);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`raftkv: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`raftkv: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);

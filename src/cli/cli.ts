// The `raftkv` command: serve one node, run a local cluster, or talk to a cluster as a client.
// Every command is an entry of commands.ts. Bad usage prints one line naming the problem and
// exits 2; nothing is written. Started by main.ts, bundled or not (see there).
import { COMMANDS, findCommand, hoistLeadingFlags, packageVersion, wantsHelp, type CliIo } from './commands.js';
import { ClientUsageError } from './client-args.js';
import { UsageError } from './flags.js';
import { commandHelp, mainHelp } from './help.js';

const io: CliIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  readStdin,
  isStdinTerminal: process.stdin.isTTY === true,
};

/** Standard input to its end, refused past maxBytes (a value piped in is bounded as any other). */
async function readStdin(maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      process.stdin.destroy();
      throw new ClientUsageError(`the value on stdin is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    io.stderr(mainHelp(COMMANDS));
    return 2;
  }
  if (first === '--version' || first === '-v') {
    io.stdout(`${packageVersion()}\n`);
    return 0;
  }
  if (first === '--help' || first === '-h') {
    // `raftkv --help get` is `raftkv get --help`.
    const named = argv[1] === undefined ? undefined : findCommand(argv[1]);
    io.stdout(named === undefined ? mainHelp(COMMANDS) : commandHelp(named));
    return 0;
  }
  const hoisted = hoistLeadingFlags(argv);
  const name = hoisted?.command ?? first;
  const rest = hoisted?.rest ?? argv.slice(1);
  const command = findCommand(name);
  if (command === undefined) throw new UsageError(`unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(', ')}; see raftkv --help)`);
  if (command.handlesHelp !== true && wantsHelp(rest)) {
    io.stdout(commandHelp(command));
    return 0;
  }
  return command.run(rest, io);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ClientUsageError) {
      process.stderr.write(`raftkv: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`raftkv: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);

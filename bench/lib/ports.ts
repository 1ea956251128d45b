// Free TCP ports on 127.0.0.1, asked of the kernel (listen on port 0) rather than guessed, since
// other engineers' tests share this machine's port space.
import { createServer, type Server } from 'node:net';

export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = server.address();
      if (addr === null || typeof addr === 'string') throw new Error('no port was assigned');
      ports.push(addr.port);
    }
  } finally {
    // All held open until every port is chosen, so none is handed out twice.
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return ports;
}

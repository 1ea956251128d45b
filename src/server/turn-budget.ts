// How many HTTP requests one turn of the event loop may take from the client connections before
// the rest wait for the next turn (docs/security.md, "Bounded resources").
//
// Node parses every request in what one read of a socket returned (up to 64 KiB, ~1,600 small
// pipelined requests) before any of them can be refused, and one poll of the loop reads every
// socket that has data. Eight connections that each write 64 KiB of pipelined requests at once
// so cost one turn ~13,000 parsed requests: hundreds of milliseconds of CPU in which no raft timer
// runs, and a leader held for its election timeout loses its place. A budget per turn bounds it:
// the request that spends the last of it stops reading on every other client connection (their
// data waits in the kernel, and libuv skips them in the poll already under way), and the next
// turn's check phase starts them again, after the timers ran. What one read already returned is
// still parsed whole, so a turn costs at most the budget and one read of each connection that was
// being parsed.
//
// Stopping a socket is `handle.readStop()`: the HTTP parser reads a plain or TLS socket's handle
// directly (node:http "consumes" it), so `socket.pause()` does not stop it. Only a handle that
// reads now is stopped, and only one that still reads (node:net's own flag) is started again, so
// node's own flow control is never undone.
import type { Socket } from 'node:net';

/** The part of a libuv stream handle this uses; node:net keeps `reading` in step with its own calls. */
interface StreamHandle {
  reading?: boolean;
  readStop(): number;
  readStart(): number;
}

function handleOf(socket: Socket): StreamHandle | null {
  const handle = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.readStop !== 'function' || typeof handle.readStart !== 'function') return null;
  return handle as StreamHandle;
}

export class TurnBudget {
  private readonly live = new Set<Socket>();
  private readonly held: Socket[] = [];
  private used = 0;
  private isResetQueued = false;
  /** Turns in which the budget ran out. */
  exhaustedTurns = 0;

  /** @param perTurn requests one turn may take before the other connections wait */
  constructor(private readonly perTurn: number) {
    if (!Number.isInteger(perTurn) || perTurn < 1) throw new RangeError(`perTurn must be a positive integer, got ${perTurn}`);
  }

  /** A client connection whose reads the budget may stop; forgotten when it closes. */
  track(socket: Socket): void {
    this.live.add(socket);
    socket.once('close', () => this.live.delete(socket));
  }

  /** Connections tracked now. */
  get size(): number {
    return this.live.size;
  }

  /** One request parsed this turn. */
  spend(): void {
    if (!this.isResetQueued) {
      this.isResetQueued = true;
      setImmediate(this.reset);
    }
    if (++this.used !== this.perTurn) return;
    this.exhaustedTurns++;
    for (const socket of this.live) {
      const handle = handleOf(socket);
      if (handle === null || socket.destroyed || handle.reading === false) continue;
      if (handle.readStop() === 0) this.held.push(socket);
    }
  }

  private readonly reset = (): void => {
    this.isResetQueued = false;
    this.used = 0;
    for (const socket of this.held.splice(0)) {
      const handle = handleOf(socket);
      if (handle === null || socket.destroyed || handle.reading === false) continue;
      if (handle.readStart() !== 0) socket.destroy();
    }
  };
}

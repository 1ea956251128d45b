// Streams one InstallSnapshot (§7) to a peer over its own connection, beside the message
// stream, so a snapshot of hundreds of MB never sits in front of heartbeats (an election
// timeout fired by a starved heartbeat would depose a healthy leader, §5.2). The bytes go out
// in chunks, each written only when the socket has drained the previous ones, and the CRC32 is
// computed chunk by chunk so no pass over the whole snapshot blocks the event loop.
import zlib from 'node:zlib';
import { dial } from './dial.js';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  encodeHello,
  encodeSnapshotBegin,
  encodeSnapshotEnd,
  frameBody,
  frameType,
  snapshotChunkHeader,
} from './frame.js';
import type net from 'node:net';
import type { MessageEncoder } from './codec.js';
import type { DialSettings } from './dial.js';
import type { InstallSnapshot } from '../raft/types.js';
import type { PeerAddress, TransportLogger } from './types.js';

export interface SnapshotSendRequest {
  readonly message: InstallSnapshot;
  readonly address: PeerAddress;
  readonly clusterId: string;
  readonly dialing: DialSettings;
  readonly encoder: MessageEncoder;
  readonly chunkBytes: number;
  readonly idleTimeoutMs: number;
  readonly logger: TransportLogger;
  /** Aborting ends the transfer at once (the transport is stopping or the peer was removed). */
  readonly signal: AbortSignal;
}

const EMPTY = new Uint8Array(0);

/** Resolves true once the receiver acknowledged delivery; false on any failure. Never rejects. */
export function sendSnapshot(req: SnapshotSendRequest): Promise<boolean> {
  const { message, logger } = req;
  return new Promise<boolean>((resolve) => {
    let isSettled = false;
    let socket: net.Socket | null = null;
    const finish = (ok: boolean, reason: string): void => {
      if (isSettled) return;
      isSettled = true;
      req.signal.removeEventListener('abort', onAbort);
      if (ok) logger.debug('snapshot delivered', { peer: message.to, bytes: message.snapshot.data.length });
      else logger.warn('snapshot transfer failed', { peer: message.to, reason });
      socket?.destroy();
      resolve(ok);
    };
    const onAbort = (): void => finish(false, 'aborted');
    if (req.signal.aborted) return finish(false, 'aborted');
    req.signal.addEventListener('abort', onAbort);

    let begin: Buffer;
    try {
      const header = req.encoder.encode({ ...message, snapshot: { meta: message.snapshot.meta, data: EMPTY } });
      begin = encodeSnapshotBegin(message.snapshot.data.length, Array.isArray(header) ? Buffer.concat(header) : header);
    } catch (err) {
      return finish(false, `cannot encode: ${String(err)}`);
    }

    const { socket: s, readyEvent } = dial(req.address, req.dialing);
    socket = s;
    s.setTimeout(req.idleTimeoutMs, () => finish(false, 'idle timeout'));
    s.on('error', (err) => finish(false, err.message));
    s.on('close', () => finish(false, 'connection closed before acknowledgement'));
    const decoder = new FrameDecoder(4096);
    let isStreaming = false;
    s.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          const type = frameType(frame);
          if (type === FrameType.helloAck && !isStreaming) {
            isStreaming = true;
            void stream(s, begin).catch((err: unknown) => finish(false, String(err)));
          } else if (type === FrameType.helloReject) {
            finish(false, `handshake refused: ${frameBody(frame).shortString('reason')}`);
          } else if (type === FrameType.goodbye) {
            finish(false, 'the receiver closed the stream as idle');
          } else if (type === FrameType.snapshotAck) {
            const ok = frameBody(frame).u8('ok') === 1;
            finish(ok, 'receiver refused the snapshot');
          } else {
            finish(false, `unexpected frame type ${type}`);
          }
          return !isSettled;
        });
      } catch (err) {
        finish(false, String(err));
      }
    });
    s.once(readyEvent, () => {
      s.write(encodeHello({ version: PROTOCOL_VERSION, clusterId: req.clusterId, from: message.from, to: message.to, purpose: 'snapshot' }));
    });

    async function stream(sock: net.Socket, beginFrame: Buffer): Promise<void> {
      const data = message.snapshot.data;
      sock.write(beginFrame);
      let crc = 0;
      for (let offset = 0; offset < data.length; offset += req.chunkBytes) {
        if (isSettled) return;
        const end = Math.min(offset + req.chunkBytes, data.length);
        const view = data.subarray(offset, end);
        crc = zlib.crc32(view, crc);
        sock.cork();
        sock.write(snapshotChunkHeader(end - offset));
        const hasRoom = sock.write(view);
        sock.uncork();
        // Back-pressure: never hand the socket more than one chunk beyond its high-water mark.
        if (!hasRoom) await drained(sock);
      }
      if (!isSettled) sock.write(encodeSnapshotEnd(crc));
    }
  });
}

function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

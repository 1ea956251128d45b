// The binary command codec: what travels in a log entry's data. No JSON anywhere, so a put costs
// a handful of bytes of framing and no parsing.
//
//   command  = tag:u8 flags:u8 time:f64be [idempotencyKey:str] body
//   tag      = 0x01 put | 0x02 delete | 0x03 txn | 0x04 compact | 0x05 leaseGrant | 0x06 leaseRevoke
//              (never 0xfe: the server's member records)
//   flags    = 0x01 idempotencyKey | 0x02 prevValue | 0x04 prevIndex | 0x08 prevExist given
//              | 0x10 prevExist is true | 0x20 replyLimit given (txn only) | 0x40 lease given (put
//              only) | 0x80 expired (leaseRevoke only)
//   put      = key:str [prevValue:bytes] [prevIndex:varint] [lease:varint] value:bytes
//   delete   = key:str [prevValue:bytes] [prevIndex:varint]
//   compact  = revision:varint;  leaseGrant = id:varint ttlSeconds:varint;  leaseRevoke = id:varint
//   txn      = n:varint compare*n  n:varint op*n (success)  n:varint op*n (failure)
//              [replyLimit:varint]   (iff flag 0x20; added after the first release, so a txn
//              without it, as every older log holds, decodes as before: no limit)
//   compare  = key:str target:u8 op:u8 (bytes if target is value, else varint)
//              target 0 value | 1 version | 2 createIndex | 3 modIndex | 4 createRevision
//              | 5 modRevision | 6 lease;  op 0 = | 1 != | 2 < | 3 >
//   op       = 0x01 put key:str value:bytes | 0x02 delete key:str | 0x03 get key:str
//              | 0x04 range prefix:str limit:varint | 0x05 put key:str lease:varint value:bytes
//   str      = len:varint UTF-8;  bytes = len:varint bytes;  varint = unsigned LEB128 (< 2^53)
//
// Decoding is strict (unknown tags or flags, truncation, trailing bytes, bad UTF-8, a time that
// is not a finite number throw KvError BAD_COMMAND): every node decodes the same bytes the same
// way, so a rejection is deterministic too. New fields come as new flag bits: an old decoder
// refuses them (a rolling upgrade must not propose them before every node decodes them).
import { ByteReader, ByteWriter, stringSize, varintSize } from './bytes.js';
import {
  COMPARE_OPS,
  COMPARE_TARGETS,
  type Command,
  type CompareOp,
  type TxnCompare,
  type TxnOp,
} from './command.js';
import { KvError } from './errors.js';

export const COMMAND_TAG = { put: 0x01, delete: 0x02, txn: 0x03, compact: 0x04, leaseGrant: 0x05, leaseRevoke: 0x06 } as const;

const F_IDEMPOTENCY = 0x01;
const F_PREV_VALUE = 0x02;
const F_PREV_INDEX = 0x04;
const F_PREV_EXIST = 0x08;
const F_PREV_EXIST_TRUE = 0x10;
const F_REPLY_LIMIT = 0x20;
const F_LEASE = 0x40;
const F_EXPIRED = 0x80;
const KNOWN_FLAGS = 0xff;

const OP_PUT = 0x01;
const OP_DELETE = 0x02;
const OP_GET = 0x03;
const OP_RANGE = 0x04;
const OP_PUT_LEASE = 0x05;
/** deleteRange: start:str hasEnd:u8 [end:str] */
const OP_DELETE_RANGE = 0x06;

export function encodeCommand(cmd: Command): Uint8Array {
  let flags = cmd.idempotencyKey !== undefined ? F_IDEMPOTENCY : 0;
  // Exact for put and delete, so the output is the writer's buffer with no final copy.
  let capacity = 10 + (cmd.idempotencyKey !== undefined ? stringSize(cmd.idempotencyKey) : 0);
  if (cmd.type === 'compact') capacity += varintSize(cmd.revision);
  else if (cmd.type === 'leaseGrant') capacity += varintSize(cmd.id) + varintSize(cmd.ttlSeconds);
  else if (cmd.type === 'leaseRevoke') {
    capacity += varintSize(cmd.id);
    if (cmd.expired === true) flags |= F_EXPIRED;
  } else if (cmd.type !== 'txn') {
    capacity += stringSize(cmd.key);
    if (cmd.prevValue !== undefined) {
      flags |= F_PREV_VALUE;
      capacity += varintSize(cmd.prevValue.length) + cmd.prevValue.length;
    }
    if (cmd.prevIndex !== undefined) {
      flags |= F_PREV_INDEX;
      capacity += varintSize(cmd.prevIndex);
    }
    if (cmd.type === 'put') {
      if (cmd.prevExist !== undefined) flags |= F_PREV_EXIST | (cmd.prevExist ? F_PREV_EXIST_TRUE : 0);
      if (cmd.lease !== undefined && cmd.lease !== 0) {
        flags |= F_LEASE;
        capacity += varintSize(cmd.lease);
      }
      capacity += varintSize(cmd.value.length) + cmd.value.length;
    }
  } else {
    if (cmd.replyLimit !== undefined) flags |= F_REPLY_LIMIT;
    capacity += 256;
  }
  const w = new ByteWriter(capacity);
  w.u8(COMMAND_TAG[cmd.type]);
  w.u8(flags);
  w.f64(cmd.time);
  if (cmd.idempotencyKey !== undefined) w.string(cmd.idempotencyKey);
  switch (cmd.type) {
    case 'put':
    case 'delete':
      w.string(cmd.key);
      if (cmd.prevValue !== undefined) w.bytes(cmd.prevValue);
      if (cmd.prevIndex !== undefined) w.varint(cmd.prevIndex);
      if (cmd.type === 'put') {
        if ((flags & F_LEASE) !== 0) w.varint(cmd.lease!);
        w.bytes(cmd.value);
      }
      break;
    case 'compact':
      w.varint(cmd.revision);
      break;
    case 'leaseGrant':
      w.varint(cmd.id);
      w.varint(cmd.ttlSeconds);
      break;
    case 'leaseRevoke':
      w.varint(cmd.id);
      break;
    case 'txn':
      w.varint(cmd.compare.length);
      for (const c of cmd.compare) writeCompare(w, c);
      w.varint(cmd.success.length);
      for (const op of cmd.success) writeOp(w, op);
      w.varint(cmd.failure.length);
      for (const op of cmd.failure) writeOp(w, op);
      if (cmd.replyLimit !== undefined) w.varint(cmd.replyLimit);
      break;
  }
  return w.finish();
}

function writeCompare(w: ByteWriter, c: TxnCompare): void {
  w.string(c.key);
  w.u8(COMPARE_TARGETS.indexOf(c.target));
  w.u8(COMPARE_OPS.indexOf(c.op));
  if (c.target === 'value') w.bytes(c.value);
  else w.varint(c.value);
}

function writeOp(w: ByteWriter, op: TxnOp): void {
  switch (op.type) {
    case 'put':
      if (op.lease !== undefined && op.lease !== 0) {
        w.u8(OP_PUT_LEASE);
        w.string(op.key);
        w.varint(op.lease);
      } else {
        w.u8(OP_PUT);
        w.string(op.key);
      }
      w.bytes(op.value);
      return;
    case 'delete':
      w.u8(OP_DELETE);
      w.string(op.key);
      return;
    case 'get':
      w.u8(OP_GET);
      w.string(op.key);
      return;
    case 'range':
      w.u8(OP_RANGE);
      w.string(op.prefix);
      w.varint(op.limit);
      return;
    case 'deleteRange':
      w.u8(OP_DELETE_RANGE);
      w.string(op.start);
      w.u8(op.end === null ? 0 : 1);
      if (op.end !== null) w.string(op.end);
      return;
  }
}

/** Byte values are views into `bytes` (no copy). Throws KvError BAD_COMMAND. */
export function decodeCommand(bytes: Uint8Array): Command {
  const r = new ByteReader(bytes);
  const tag = r.u8();
  const flags = r.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new KvError('BAD_COMMAND', `unknown flags 0x${flags.toString(16)}`);
  const time = r.f64();
  // The log clock (idempotency.ts) takes the largest time applied; NaN or ±Infinity would stop
  // it, expire every record at once, and write a snapshot that no longer restores.
  if (!Number.isFinite(time)) throw new KvError('BAD_COMMAND', 'the command time is not a finite number');
  const idempotencyKey = (flags & F_IDEMPOTENCY) !== 0 ? r.string() : undefined;
  let cmd: Command;
  switch (tag) {
    case COMMAND_TAG.put:
    case COMMAND_TAG.delete: {
      if ((flags & (F_REPLY_LIMIT | F_EXPIRED)) !== 0) throw new KvError('BAD_COMMAND', 'replyLimit or expired on a put or delete');
      const key = r.string();
      if (key.length === 0) throw new KvError('BAD_COMMAND', 'empty key');
      const prevValue = (flags & F_PREV_VALUE) !== 0 ? r.bytes() : undefined;
      const prevIndex = (flags & F_PREV_INDEX) !== 0 ? r.varint() : undefined;
      if (tag === COMMAND_TAG.put) {
        const lease = (flags & F_LEASE) !== 0 ? r.varint() : undefined;
        if (lease === 0) throw new KvError('BAD_COMMAND', 'lease 0 is written as no lease');
        const value = r.bytes();
        if ((flags & ~F_IDEMPOTENCY) === 0) {
          // A plain put, the most common command by far (every write a restart replays): one
          // object, not a literal and then a spread copy per optional field.
          r.end();
          return idempotencyKey === undefined ? { type: 'put', time, key, value } : { type: 'put', time, key, value, idempotencyKey };
        }
        const prevExist = (flags & F_PREV_EXIST) !== 0 ? (flags & F_PREV_EXIST_TRUE) !== 0 : undefined;
        cmd = { type: 'put', time, key, value };
        if (prevExist !== undefined) cmd = { ...cmd, prevExist };
        if (lease !== undefined) cmd = { ...cmd, lease };
      } else {
        if ((flags & (F_PREV_EXIST | F_PREV_EXIST_TRUE | F_LEASE)) !== 0) throw new KvError('BAD_COMMAND', 'prevExist or lease on a delete');
        cmd = { type: 'delete', time, key };
      }
      if (prevValue !== undefined) cmd = { ...cmd, prevValue };
      if (prevIndex !== undefined) cmd = { ...cmd, prevIndex };
      break;
    }
    case COMMAND_TAG.txn: {
      if ((flags & ~(F_IDEMPOTENCY | F_REPLY_LIMIT)) !== 0) throw new KvError('BAD_COMMAND', 'put/delete flags on a txn');
      const compare: TxnCompare[] = [];
      for (let n = r.varint(); n > 0; n--) compare.push(readCompare(r));
      const success = readOps(r);
      const failure = readOps(r);
      cmd = (flags & F_REPLY_LIMIT) !== 0
        ? { type: 'txn', time, compare, success, failure, replyLimit: r.varint() }
        : { type: 'txn', time, compare, success, failure };
      break;
    }
    case COMMAND_TAG.compact:
    case COMMAND_TAG.leaseGrant:
    case COMMAND_TAG.leaseRevoke: {
      const allowed = F_IDEMPOTENCY | (tag === COMMAND_TAG.leaseRevoke ? F_EXPIRED : 0);
      if ((flags & ~allowed) !== 0) throw new KvError('BAD_COMMAND', `flags 0x${flags.toString(16)} on a ${tag === COMMAND_TAG.compact ? 'compact' : 'lease command'}`);
      if (tag === COMMAND_TAG.compact) cmd = { type: 'compact', time, revision: r.varint() };
      else if (tag === COMMAND_TAG.leaseGrant) cmd = { type: 'leaseGrant', time, id: r.varint(), ttlSeconds: r.varint() };
      else cmd = (flags & F_EXPIRED) !== 0 ? { type: 'leaseRevoke', time, id: r.varint(), expired: true } : { type: 'leaseRevoke', time, id: r.varint() };
      break;
    }
    default:
      throw new KvError('BAD_COMMAND', `unknown command tag 0x${tag.toString(16)}`);
  }
  r.end();
  return idempotencyKey === undefined ? cmd : { ...cmd, idempotencyKey };
}

function readCompare(r: ByteReader): TxnCompare {
  const key = r.string();
  if (key.length === 0) throw new KvError('BAD_COMMAND', 'empty key in a compare');
  const target = COMPARE_TARGETS[r.u8()];
  const op: CompareOp | undefined = COMPARE_OPS[r.u8()];
  if (target === undefined || op === undefined) throw new KvError('BAD_COMMAND', 'unknown compare target or op');
  return target === 'value' ? { key, target, op, value: r.bytes() } : { key, target, op, value: r.varint() };
}

function readOps(r: ByteReader): TxnOp[] {
  const ops: TxnOp[] = [];
  for (let n = r.varint(); n > 0; n--) {
    const type = r.u8();
    const key = r.string();
    if (key.length === 0 && type !== OP_RANGE && type !== OP_DELETE_RANGE) throw new KvError('BAD_COMMAND', 'empty key in a transaction op');
    switch (type) {
      case OP_PUT:
        ops.push({ type: 'put', key, value: r.bytes() });
        break;
      case OP_PUT_LEASE: {
        const lease = r.varint();
        if (lease === 0) throw new KvError('BAD_COMMAND', 'lease 0 is written as no lease');
        ops.push({ type: 'put', key, value: r.bytes(), lease });
        break;
      }
      case OP_DELETE:
        ops.push({ type: 'delete', key });
        break;
      case OP_GET:
        ops.push({ type: 'get', key });
        break;
      case OP_RANGE:
        ops.push({ type: 'range', prefix: key, limit: r.varint() });
        break;
      case OP_DELETE_RANGE: {
        const hasEnd = r.u8();
        if (hasEnd > 1) throw new KvError('BAD_COMMAND', 'bad end flag in a delete range');
        ops.push({ type: 'deleteRange', start: key, end: hasEnd === 1 ? r.string() : null });
        break;
      }
      default:
        throw new KvError('BAD_COMMAND', `unknown transaction op 0x${type.toString(16)}`);
    }
  }
  return ops;
}

// Values on the wire (docs/api.md): request bodies and ?raw carry bytes as they are; in JSON a
// value is a UTF-8 string when it is valid UTF-8, else base64 beside `"encoding":"base64"`.
import type { Value } from './types.js';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

export function toBytes(value: Value): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

/** The bytes as UTF-8 text, or null when they are not valid UTF-8. */
export function utf8OrNull(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}

export function fromJsonValue(value: string, encoding: unknown): Uint8Array {
  if (encoding === 'base64') {
    const buf = Buffer.from(value, 'base64');
    return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  }
  return encoder.encode(value);
}

/** The JSON form of a value: `{value}` for UTF-8 text, `{value, encoding: 'base64'}` otherwise. */
export function toJsonValue(value: Value): { value: string; encoding?: 'base64' } {
  if (typeof value === 'string') return { value };
  const text = utf8OrNull(value);
  if (text !== null) return { value: text };
  return { value: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'), encoding: 'base64' };
}

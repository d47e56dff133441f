import type { IncomingMessage } from 'node:http';
import { AppError, badInput } from '../errors.js';

const tooLarge = (limit: number) =>
  new AppError('PAYLOAD_TOO_LARGE', `the request body must be at most ${limit} bytes`, 'Send a smaller body: fewer fields or shorter values (a GraphQL document of at most a few KB).');

/**
 * The request's body, read whole but never past `limit` bytes: a `Content-Length` over it is
 * refused before a byte is kept, a body that grows past it (chunked) as soon as it does. What
 * follows is dropped as it arrives (Node does so for a body never read), never held. GET and HEAD
 * carry none.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> | Buffer {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    if (!/^\d{1,15}$/.test(declared)) throw badInput('Content-Length must be a whole number of bytes', 'Send a valid Content-Length, or none.');
    if (Number(declared) > limit) throw tooLarge(limit);
    if (declared === '0') return Buffer.alloc(0);
  } else if (req.headers['transfer-encoding'] === undefined) {
    return Buffer.alloc(0);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // The rest is read and dropped, so that the client, still sending, can read the 413; the
        // server's requestTimeout bounds a body that never ends.
        req.removeAllListeners('data');
        req.on('data', () => {});
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

import type { IncomingMessage } from 'node:http';
import { AppError, badInput } from '../errors.js';

const tooLarge = (limit: number) =>
  new AppError('PAYLOAD_TOO_LARGE', `the request body must be at most ${limit} bytes`, 'Send a smaller body: fewer fields or shorter values (a GraphQL document of at most a few KB).');

/**
 * The request's body, read whole but never past `limit` bytes: a `Content-Length` over it is
 * refused before a byte is read, a body that grows past it (chunked) as soon as it does. GET and
 * HEAD carry none.
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
        // Nothing more is read; the answer closes the connection (see `answer`).
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

import type { Duplex } from 'node:stream';
import { errorBody } from './envelope.js';

/** What Node's HTTP parser refuses, by its error code: the status, and what to tell the client. */
const refusals: Record<string, [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'the request line and headers must be at most 16 KB', 'Send shorter headers and a shorter URL; put large input in a POST body.'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request was not received in time', 'Send the whole request promptly.'],
};
const malformed: [number, string, string, string] = [400, 'Bad Request', 'the request is not valid HTTP/1.1', 'Send a well-formed request: a method such as GET or POST, a path, and valid headers.'];

/**
 * Answers a request that Node's HTTP parser refused before the pipeline saw it (an unknown method,
 * headers past 16 KB, broken framing) in the envelope, with `no-store`, as the pipeline would;
 * Node's own answer has no body. For the server's `clientError` event.
 */
export function answerClientError(error: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, message, suggestion] = refusals[error.code ?? ''] ?? malformed;
  const body = JSON.stringify(errorBody(message, suggestion));
  // A HEAD gets the headers alone; the client would take a body for the start of another answer.
  const head = error.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${head ? '' : body}`,
  );
}

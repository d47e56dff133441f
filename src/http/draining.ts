import type { RequestListener, ServerResponse } from 'node:http';

export interface Drainable {
  listener: RequestListener;
  /** From now on every answer, those in flight included, closes its connection. */
  drain(): void;
}

/**
 * Wraps the server's handler for a graceful stop. Node keeps a keep-alive socket open after its
 * answer, which would hold the exit back by `keepAliveTimeout`; once draining, answers say
 * `Connection: close`. The header is set before the handler runs: a handler may answer at once
 * (a 429), and setting a header after that throws.
 */
export function drainable(handler: RequestListener): Drainable {
  let draining = false;
  const unanswered = new Set<ServerResponse>();
  return {
    listener: (request, response) => {
      if (draining) {
        response.setHeader('connection', 'close');
      } else {
        unanswered.add(response);
        response.on('close', () => unanswered.delete(response));
      }
      handler(request, response);
    },
    drain: () => {
      draining = true;
      for (const response of unanswered) if (!response.headersSent) response.setHeader('connection', 'close');
    },
  };
}

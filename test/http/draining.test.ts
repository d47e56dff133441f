import { Agent, createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { drainable } from '../../src/http/draining.js';

describe('a draining server', () => {
  it('closes keep-alive connections after each answer, also one its handler sends at once', async () => {
    const { listener, drain } = drainable((_req, res) => {
      // Answers before returning, as the rate limiter's 429 does.
      res.writeHead(429, { 'content-type': 'text/plain' });
      res.end('slow down');
    });
    const server = createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, agent }, (res) => {
        res.resume().on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
      }).on('error', reject).end();
    });
    try {
      expect((await get()).headers.connection).toBe('keep-alive');
      drain();
      const last = await get();
      expect(last.status).toBe(429);
      expect(last.headers.connection).toBe('close');
    } finally {
      agent.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

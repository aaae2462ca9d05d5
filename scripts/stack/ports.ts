// Loopback ports for the local stack and the tests.
import { createServer } from 'node:net';

/** A port the OS considers free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Whether `port` can be bound on 127.0.0.1 now. */
export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const server = createServer().once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });
}

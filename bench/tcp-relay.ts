/**
 * The floor a Node proxy stands on: a TCP relay with no protocol work, one Postgres connection per
 * client, bytes copied as they come with net.Socket 'data' events and write(). The benchmark's
 * "Node TCP relay" rows run it as its own process (`node bench/tcp-relay.ts` through tsx's loader,
 * which only costs start-up), so pgfence's CPU per transaction can be read against what Node's
 * sockets alone cost on the same machine. Usage: tcp-relay LISTEN_PORT BACKEND_HOST BACKEND_PORT.
 */
import net from 'node:net';

const [listenPort, backendHost, backendPort] = process.argv.slice(2);
if (listenPort === undefined || backendHost === undefined || backendPort === undefined) {
  console.error('usage: tcp-relay LISTEN_PORT BACKEND_HOST BACKEND_PORT');
  process.exit(2);
}

function pipeTo(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('close', () => to.destroy());
  from.on('error', () => to.destroy());
}

const server = net.createServer((client) => {
  client.setNoDelay(true);
  const backend = net.connect({ host: backendHost, port: Number(backendPort), noDelay: true });
  pipeTo(client, backend);
  pipeTo(backend, client);
});
server.listen(Number(listenPort), '127.0.0.1', () => console.log('listening'));

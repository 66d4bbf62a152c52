// The attacker for bench/slow-clients.bench.ts, in a process of its own:
// keeps `count` slow connections open to 127.0.0.1:<port> (half send nothing,
// half trickle request headers that never end), opening a new one whenever the
// server closes one. Prints "ready" once all are connected.
import { connect } from 'node:net';

const [port, count] = process.argv.slice(2).map(Number) as [number, number];
let open = 0;
let opened = 0;
let ready = false;

function slowConnection(i: number): void {
  const s = connect(port, '127.0.0.1');
  opened++;
  let trickle: NodeJS.Timeout | undefined;
  let connected = false;
  s.on('error', () => {});
  s.once('connect', () => {
    connected = true;
    open++;
    if (i % 2 === 1) {
      s.write('GET /healthz HTTP/1.1\r\nHost: berth\r\n');
      trickle = setInterval(() => s.writable && s.write(`X-Slow: ${i}\r\n`), 1000);
    }
    if (!ready && open >= count) {
      ready = true;
      process.stdout.write('ready\n');
    }
  });
  s.once('close', () => {
    clearInterval(trickle);
    if (connected) open--;
    setTimeout(() => slowConnection(i), 10);
  });
}

for (let i = 0; i < count; i++) slowConnection(i);
process.on('SIGTERM', () => {
  process.stdout.write(`opened ${opened}\n`);
  process.exit(0);
});

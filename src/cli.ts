// The `berth` executable's entry (bin/berth, `npm start`, the container's `node src/cli.ts serve`).
// The commands live in src/cli/: program.ts defines them and loads each one's code when it runs.
import { main } from './cli/program.ts';

// A reader that stops early (`berth get instances | head`) closes the pipe: that ends the
// command quietly, as it does for kubectl, instead of an unhandled EPIPE error event.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
}

const flushed = () => Promise.all([process.stdout, process.stderr].map((s) => new Promise((r) => s.write('', r))));

main(process.argv.slice(2)).then(
  async (code) => {
    await flushed();
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`berth: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

// `berth provision` in a real pseudo-terminal (tmux): progress is drawn on one line and
// redrawn in place (spinner, the operation's own step descriptions, elapsed time), nothing of
// it is left behind but the outcome line, and stdout piped to a file is clean JSON.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BERTH_BIN, startCliWorld, type CliWorld } from './support.ts';

const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;
let w: CliWorld;
let dir: string;
const socket = `berth-cli-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

before(async () => {
  // .ci/run installs tmux; without it this test fails rather than pretending to pass.
  assert.doesNotThrow(() => execFileSync('tmux', ['-V']), 'tmux is needed for the terminal test (Debian package tmux)');
  w = await startCliWorld();
  dir = mkdtempSync(join(tmpdir(), 'berth-tty-'));
});

after(async () => {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
  await w?.berth(['deprovision', 'tty-demo']);
  await w?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('progress is drawn and replaced on a terminal, and piped stdout is clean JSON', async () => {
  const script = join(dir, 'run.sh');
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  writeFileSync(
    script,
    [
      ...Object.entries(w.env).map(([k, v]) => `export ${k}=${quote(v)}`),
      'export TERM=xterm-256color',
      // Give the test time to attach pipe-pane before the first byte.
      'sleep 0.5',
      `${quote(BERTH_BIN)} provision tty-demo --offering paced --plan slow -o json | cat > ${quote(join(dir, 'out.json'))}`,
      `echo "\${PIPESTATUS[0]}" > ${quote(join(dir, 'rc'))}`,
      'sleep 600',
    ].join('\n'),
  );
  tmux('new-session', '-d', '-s', 'cli', '-x', '160', '-y', '30', `bash ${script}`);
  tmux('pipe-pane', '-t', 'cli', '-o', `cat >> ${join(dir, 'raw.log')}`);

  const screens: string[] = [];
  const rcFile = join(dir, 'rc');
  for (let i = 0; i < 600 && !existsSync(rcFile); i++) {
    screens.push(tmux('capture-pane', '-p', '-t', 'cli'));
    await sleep(100);
  }
  assert.ok(existsSync(rcFile), 'berth provision finished');
  await sleep(200);
  assert.equal(readFileSync(rcFile, 'utf8').trim(), '0');

  // While it ran: one progress line with a spinner, the operation's description and the elapsed time.
  const progressLines = screens.flatMap((s) => s.split('\n')).filter((l) => SPINNER.test(l));
  assert.ok(progressLines.length > 0, `no progress line was drawn; screens:\n${screens.slice(-3).join('\n---\n')}`);
  for (const l of progressLines) assert.match(l, /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] provisioning tty-demo(: .+)? \(\d\d:\d\d\)$/);
  const steps = new Set(progressLines.map((l) => /step (\d) of 4/.exec(l)?.[1]).filter(Boolean));
  assert.ok(steps.size >= 2, `the line showed the operation's changing descriptions (saw steps ${[...steps].join(', ')})`);
  // Never more than one progress line on the screen at once: each drawing replaced the last.
  for (const s of screens) assert.ok(s.split('\n').filter((l) => SPINNER.test(l)).length <= 1, `two progress lines at once:\n${s}`);

  // Redrawn in place: carriage return + erase-line before each drawing, in the raw bytes the terminal got.
  const raw = readFileSync(join(dir, 'raw.log'), 'utf8');
  assert.ok(raw.split('\r\x1b[2K').length > 3, 'the line was erased and redrawn several times');

  // Afterwards only the outcome is left on the screen.
  const final = tmux('capture-pane', '-p', '-t', 'cli');
  assert.doesNotMatch(final, SPINNER);
  assert.match(final, /^provisioning tty-demo: succeeded \(\d\d:\d\d\)$/m);

  // stdout went through a pipe: JSON and nothing else.
  const out = readFileSync(join(dir, 'out.json'), 'utf8');
  assert.doesNotMatch(out, /\x1b|\r|⠋|provisioning/);
  const object = JSON.parse(out) as { name: string; offering: string; plan: string; last_operation: { state: string } };
  assert.deepEqual([object.name, object.offering, object.plan, object.last_operation.state], ['tty-demo', 'paced', 'slow', 'succeeded']);
});

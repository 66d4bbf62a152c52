// `berth --help` and `berth get …` load only what they need: the modules each command loads,
// recorded by a resolve hook, never include the broker's own (express, knex, pino, the HTTP
// layer) and load YAML only when YAML is asked for. Start-up times are in bench/cli-start.bench.ts.
// Also: bin/berth works through a symlink (npm link / npm install -g), and the completion
// scripts complete commands and kinds.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../support/berth.ts';
import { PATH, runBerth, startCliWorld, type CliWorld } from './support.ts';

let w: CliWorld;
let dir: string;
before(async () => {
  w = await startCliWorld();
  dir = mkdtempSync(join(tmpdir(), 'berth-loads-'));
});
after(async () => {
  await w?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function loadsOf(args: string[]): Promise<string[]> {
  const file = join(dir, `loads-${args.join('_').replace(/\W/g, '')}`);
  const r = await w.berth(args, { NODE_OPTIONS: `--import ${join(REPO, 'test/cli/record-loads.mjs')}`, BERTH_TEST_LOADS_FILE: file });
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => u.replace(`file://${REPO}/`, ''));
}

const BROKER_MODULES = /src\/(main|config|http|broker|service|store|db|provisioners|operations|observability)[/.]|node_modules\/(express|knex|pino|pg|zod|@kubernetes)\//;

test('berth --help loads the command table and commander, nothing of the broker', async () => {
  const loads = await loadsOf(['--help']);
  const ours = loads.filter((u) => u.startsWith('src/')).sort();
  assert.deepEqual(ours, ['src/cli.ts', 'src/cli/errors.ts', 'src/cli/program.ts']);
  const packages = new Set(loads.filter((u) => u.includes('node_modules/')).map((u) => u.split('node_modules/')[1]!.split('/')[0]));
  assert.deepEqual([...packages], ['commander']);
});

test('berth get instances loads the OSB client and the broker-mode code only; YAML only for -o yaml', async () => {
  const table = await loadsOf(['get', 'instances']);
  assert.ok(table.some((u) => u.startsWith('src/osb-client/')), 'the recorder sees the modules a command loads');
  assert.deepEqual(table.filter((u) => BROKER_MODULES.test(u)), []);
  assert.ok(!table.some((u) => u.includes('node_modules/yaml/')), 'no YAML for a table');
  const yaml = await loadsOf(['get', 'instances', '-o', 'yaml']);
  assert.ok(yaml.some((u) => u.includes('node_modules/yaml/')), 'YAML when asked for');
  assert.deepEqual(yaml.filter((u) => BROKER_MODULES.test(u)), []);
});

test('bin/berth runs through a symlink in another folder, as npm link and npm install -g make it', async () => {
  const bin = join(dir, 'global', 'bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(join(REPO, 'bin/berth'), join(bin, 'berth'));
  const r = execFileSync(join(bin, 'berth'), ['--help'], { cwd: dir, env: { PATH, HOME: dir }, encoding: 'utf8' });
  assert.match(r, /^Usage: berth <command> \[options\]/);
  // A relative link to a relative link, as node_modules/.bin has.
  const nested = join(dir, 'project', 'node_modules', '.bin');
  mkdirSync(nested, { recursive: true });
  symlinkSync(join('..', '..', '..', 'global', 'bin', 'berth'), join(nested, 'berth'));
  const r2 = await runBerth(['get', 'plans', '-o', 'name'], { ...w.env });
  assert.equal(r2.code, 0, r2.stderr);
  const r3 = execFileSync(join(nested, 'berth'), ['get', 'plans', '-o', 'name'], { cwd: dir, env: w.env, encoding: 'utf8' });
  assert.equal(r3, r2.stdout);
});

test('bash completion completes commands, kinds, flags and output formats', () => {
  const script = execFileSync(join(REPO, 'bin/berth'), ['completion', 'bash'], { env: { PATH, HOME: dir }, encoding: 'utf8' });
  const complete = (...words: string[]) =>
    execFileSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((x) => `'${x}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _berth; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).trim().split(' ');
  assert.deepEqual(complete('berth', 'prov'), ['provision']);
  assert.deepEqual(complete('berth', 'get', 'in'), ['instances']);
  assert.deepEqual(complete('berth', 'describe', 'b'), ['binding']);
  assert.deepEqual(complete('berth', 'get', 'instances', '-o', 'y'), ['yaml']);
  assert.ok(complete('berth', 'provision', 'x', '--off').includes('--offering'));
  assert.ok(complete('berth', 'bind', 'x', '--').includes('--show-secrets'));
  assert.deepEqual(complete('berth', 'catalog', 'v'), ['validate']);
});

test('zsh completion offers the words that may follow (.ci/run installs zsh)', () => {
  const script = execFileSync(join(REPO, 'bin/berth'), ['completion', 'zsh'], { env: { PATH, HOME: dir }, encoding: 'utf8' });
  assert.match(script, /^#compdef berth\n/);
  // compadd (zsh's completion builtin) stubbed to print what it was given.
  const offered = (...words: string[]) =>
    execFileSync('zsh', ['-c', `compadd() { print -r -- "$*"; }; compdef() {}; _files() { print files; }\n${script}\nwords=(${words.map((x) => `'${x}'`).join(' ')}); CURRENT=${words.length}; _berth`], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .slice(1);
  assert.deepEqual(offered('berth', 'get', 'in').slice(0, 4), ['instances', 'bindings', 'offerings', 'plans']);
  assert.deepEqual(offered('berth', 'get', 'instances', '-o', ''), ['table', 'wide', 'json', 'yaml', 'name']);
  assert.ok(offered('berth', '').includes('provision'));
  assert.ok(offered('berth', 'provision', 'x', '').includes('--offering'));
});

test('a reader that goes away (berth … | head) ends berth quietly, with no error event', () => {
  // The reader closes its input at once, so every write of berth's meets a closed pipe.
  const out = execFileSync('bash', ['-c', `${join(REPO, 'bin/berth')} --help 2>"$1" | (exec 0<&-; sleep 1); echo "\${PIPESTATUS[0]}"; cat "$1"`, 'bash', join(dir, 'stderr')], {
    env: { PATH, HOME: dir },
    encoding: 'utf8',
  });
  assert.equal(out, '0\n');
});

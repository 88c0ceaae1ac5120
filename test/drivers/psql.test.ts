import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand } from '../support/helpers.js';
import type { TestProxy } from '../support/proxy.js';
import { cliEnv, POOL_MODES, runTool, startDriverProxy, type ToolResult } from './support.js';

const havePsql = await hasCommand('psql');

/** psql scripts through pgfence: backslash commands, \copy, variables, ON_ERROR_STOP. */
describe.skipIf(!havePsql).each(POOL_MODES)('psql through pgfence (%s pooling)', (mode) => {
  let proxy: TestProxy;
  let dir: string;

  beforeAll(async () => {
    proxy = await startDriverProxy(mode);
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-psql-'));
  });
  afterAll(async () => {
    await proxy?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Runs `script` with `psql -X -A -t -f` as `tenant`; unaligned, tuples only, whatever the exit code. */
  async function psqlScript(tenant: string, name: string, script: string): Promise<ToolResult> {
    const file = path.join(dir, `${name}.sql`);
    await writeFile(file, script);
    return runTool('psql', ['-X', '-A', '-t', '-f', file], await cliEnv(proxy, tenant));
  }

  it('copies a file in with \\copy FROM and back out with \\copy TO', async () => {
    const input = path.join(dir, 'in.tsv');
    const output = path.join(dir, 'out.tsv');
    const lines = Array.from({ length: 500 }, (_, i) => `psql copy ${i}\twith a tab\n`);
    await writeFile(input, lines.join(''));
    const r = await psqlScript(
      'umbrella',
      'copy',
      [
        '\\set ON_ERROR_STOP on',
        "CREATE TABLE copied (note text, extra text);",
        `\\copy copied (note, extra) from '${input}'`,
        `\\copy (SELECT note, extra FROM copied ORDER BY note COLLATE "C") to '${output}'`,
        'SELECT count(*) FROM copied;',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['CREATE TABLE', 'COPY 500', 'COPY 500', '500', '']);
    const sorted = [...lines].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(await readFile(output, 'utf8')).toBe(sorted.join(''));
    const landed = await proxy.direct<{ n: number }>('SELECT count(*)::int AS n FROM tenant_umbrella.copied');
    expect(landed.rows[0]?.n).toBe(500);
  });

  it('stores a row in variables with \\gset and uses them', async () => {
    const r = await psqlScript(
      'globex',
      'gset',
      [
        '\\set ON_ERROR_STOP on',
        'SELECT count(*) AS n, min(note) AS first_note FROM items \\gset',
        '\\echo n=:n first=:first_note',
        "SELECT :'first_note' || ' (again)', :n + 40;",
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['n=2 first=globex item 1', 'globex item 1 (again)|42', '']);
  });

  it('runs a multi-statement script and stops at the first refused statement with ON_ERROR_STOP', async () => {
    const r = await psqlScript(
      'acme',
      'stop',
      [
        '\\set ON_ERROR_STOP on',
        'BEGIN;',
        'CREATE TABLE script_log (n int);',
        'INSERT INTO script_log SELECT generate_series(1, 10);',
        'COMMIT;',
        "SELECT 'sum', sum(n) FROM script_log;",
        'SELECT * FROM tenant_globex.secrets;',
        "SELECT 'not reached';",
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(3); // psql: the script stopped on an error
    expect(r.stdout.split('\n')).toEqual(['BEGIN', 'CREATE TABLE', 'INSERT 0 10', 'COMMIT', 'sum|55', '']);
    expect(r.stderr).toMatch(/ERROR: {2}pgfence: access to schema "tenant_globex" is not allowed/);
    const stored = await proxy.direct<{ n: number }>('SELECT count(*)::int AS n FROM tenant_acme.script_log');
    expect(stored.rows[0]?.n).toBe(10);
  });

  it('describes a table with \\d and lists only the tenant\'s tables with \\dt', async () => {
    const r = await psqlScript('globex', 'describe', '\\d items\n\\dt\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("id|integer||not null|nextval('items_id_seq'::regclass)");
    expect(r.stdout).toContain("owner|text||not null|'globex'::text");
    expect(r.stdout).toContain('note|text|||');
    expect(r.stdout).toMatch(/^tenant_globex\|items\|table\|/m);
    expect(r.stdout).toMatch(/^tenant_globex\|secrets\|table\|/m);
    expect(r.stdout).not.toMatch(/tenant_acme|tenant_umbrella/);
  });

  // RESET ALL and DISCARD ALL are refused today: these state the desired behaviour (the client's
  // settings go back to their defaults, the pin stays).
  it('accepts RESET ALL in a script: the settings go back, the tenant stays', async () => {
    const defaultWorkMem = (await proxy.direct<{ work_mem: string }>('SHOW work_mem')).rows[0]?.work_mem;
    const r = await psqlScript(
      'acme',
      'reset-all',
      ['\\set ON_ERROR_STOP on', "SET work_mem = '1234kB';", 'SHOW work_mem;', 'RESET ALL;', 'SHOW work_mem;', "SELECT current_setting('search_path'), count(*) FROM items WHERE id <= 2;", ''].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['SET', '1234kB', 'RESET', defaultWorkMem, '"tenant_acme", "public"|2', '']);
  });

  it('accepts DISCARD ALL in a script: the settings go back, the tenant stays', async () => {
    const defaultWorkMem = (await proxy.direct<{ work_mem: string }>('SHOW work_mem')).rows[0]?.work_mem;
    const r = await psqlScript(
      'acme',
      'discard-all',
      ['\\set ON_ERROR_STOP on', "SET work_mem = '1234kB';", 'DISCARD ALL;', 'SHOW work_mem;', "SELECT current_setting('search_path'), count(*) FROM items WHERE id <= 2;", ''].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['SET', 'DISCARD ALL', defaultWorkMem, '"tenant_acme", "public"|2', '']);
  });
});

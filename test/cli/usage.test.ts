import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** `pgfence ...args` from the sources; resolves with the exit code and output whatever the code. */
async function pgfence(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the pgfence command line', () => {
  it('prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) expect(await pgfence(flag)).toMatchObject({ code: 0, stdout: `pgfence ${version}\n` });
  });

  // Each case starts a Node process with tsx (a second or more on a loaded machine): a generous timeout.
  it('answers --help on every command with its usage, exit 0 (also -h, and help COMMAND)', { timeout: 180_000 }, async () => {
    const cases = [...['serve', 'demo', 'token', 'roles', 'healthcheck'].map((c) => [c, '--help']), ['demo', '-h'], ['help', 'token']];
    for (const args of cases) {
      const command = args[0] === 'help' ? args[1] : args[0];
      const { code, stdout } = await pgfence(...args);
      expect(code, args.join(' ')).toBe(0);
      expect(stdout, args.join(' ')).toMatch(new RegExp(`^Usage:\\n  pgfence ${command} `));
    }
  });

  it('exits 2 on usage errors, saying what is wrong and how the command is used', { timeout: 180_000 }, async () => {
    const unknownOption = await pgfence('demo', '--bogus');
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toContain("Unknown option '--bogus'");
    expect(unknownOption.stderr).toContain('pgfence demo [--port N]');
    expect(await pgfence('serve')).toMatchObject({ code: 2, stderr: expect.stringContaining('serve needs --config FILE') });
    expect(await pgfence('token', '--config')).toMatchObject({ code: 2 });
    expect(await pgfence('serve', '--config', 'a.yaml', 'extra')).toMatchObject({ code: 2, stderr: expect.stringContaining("Unexpected argument 'extra'") });
    expect(await pgfence('nonsense')).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "nonsense"') });
    expect(await pgfence('--nonsense')).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown option "--nonsense"') });
    expect(await pgfence('help', 'nonsense')).toMatchObject({ code: 2 });
    expect(await pgfence('demo', '--port', '70000')).toMatchObject({ code: 2, stderr: expect.stringContaining('--port must be a port number') });
  });

  it('exits 2 on a configuration that does not load, 1 on a failure at run time', async () => {
    expect(await pgfence('serve', '--config', '/nonexistent/pgfence.yaml')).toMatchObject({ code: 2 });
    const down = await pgfence('healthcheck', '--port', '1', '--timeout-ms', '2000');
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('pgfence healthcheck: 127.0.0.1:1:');
  });
});

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PgAuthUsers } from './provided.js';
import { urlAs, withClient } from './pg-client.js';

export const MD5_USER = 'md5_user';
export const TRUST_USER = 'trust_user';

/**
 * On a cluster whose files we own (the embedded one), adds a role with an md5-stored password
 * and an md5 pg_hba rule, and a role with a trust rule, so the proxy's backend authentication
 * can be tested against every method one server offers. The rules go before initdb's, since
 * pg_hba.conf is first match wins, and take effect with pg_reload_conf().
 */
export async function addAuthUsers(server: { url: string; dataDir: string }): Promise<Required<Pick<PgAuthUsers, 'md5' | 'trust'>>> {
  const md5Password = randomBytes(12).toString('base64url');
  await withClient(server.url, async (client) => {
    await client.query(`SET password_encryption = 'md5'`);
    // Postgres 18 warns that md5 passwords are deprecated; that is the point of this role.
    await client.query(`CREATE ROLE ${MD5_USER} LOGIN PASSWORD ${client.escapeLiteral(md5Password)}`);
    await client.query('RESET password_encryption');
    await client.query(`CREATE ROLE ${TRUST_USER} LOGIN`);
  });

  const hbaFile = path.join(server.dataDir, 'pg_hba.conf');
  const lines = (await readFile(hbaFile, 'utf8')).split('\n');
  const firstRule = lines.findIndex((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
  lines.splice(firstRule < 0 ? lines.length : firstRule, 0,
    '# pgfence tests: one role per authentication method (before the initdb rules: first match wins)',
    `host all ${MD5_USER} 127.0.0.1/32 md5`,
    `host all ${TRUST_USER} 127.0.0.1/32 trust`,
    '',
  );
  await writeFile(hbaFile, lines.join('\n')); // in place: owner and mode stay Postgres's

  await withClient(server.url, async (client) => {
    const { rows } = await client.query<{ line_number: number; error: string }>(
      'SELECT line_number, error FROM pg_catalog.pg_hba_file_rules WHERE error IS NOT NULL',
    );
    if (rows.length > 0) throw new Error(`pg_hba.conf has errors: ${rows.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}`);
    await client.query('SELECT pg_catalog.pg_reload_conf()');
  });
  await untilLoginWorks(urlAs(server.url, { user: TRUST_USER }));

  return { md5: { user: MD5_USER, password: md5Password }, trust: { user: TRUST_USER } };
}

/** The postmaster applies a reload asynchronously; wait until a new connection sees it. */
async function untilLoginWorks(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withClient(url, (client) => client.query('SELECT 1'));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the pg_hba.conf reload did not take effect: ${(error as Error).message}`);
      await sleep(50);
    }
  }
}

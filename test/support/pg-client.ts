import pg from 'pg';

/** Connects, runs fn, and always ends the connection. Usable from the global setup and tests. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // a server-side close after fn is not the test's failure
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The same server as `url`, as another user and optionally another database. */
export function urlAs(url: string, as: { user: string; password?: string; database?: string }): string {
  const target = new URL(url);
  target.username = encodeURIComponent(as.user);
  target.password = as.password === undefined ? '' : encodeURIComponent(as.password);
  if (as.database !== undefined) target.pathname = `/${encodeURIComponent(as.database)}`;
  return target.toString();
}

import pg from 'pg';

/** What a refused connect or an ended session was told. */
export type Refusal = { code?: string; message?: string };

/** The error a connect with `config` is refused with; throws if it is served. */
export async function connectRefusal(config: pg.ClientConfig): Promise<Refusal> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  const error = await client.connect().then(
    () => null,
    (e: unknown) => e as Refusal,
  );
  await client.end().catch(() => undefined);
  if (error === null) throw new Error(`${config.user ?? 'the client'} was served`);
  return error;
}

/** The FATAL a connected client is told when pgfence ends its session, once the connection has ended. */
export function sessionEnd(client: pg.Client): Promise<Refusal> {
  return new Promise((resolve) => {
    // pg reports the FATAL, then "Connection terminated unexpectedly": the first is pgfence's word.
    let error: Refusal | null = null;
    client.on('error', (e: Refusal) => (error ??= e));
    client.once('end', () => resolve(error ?? {}));
  });
}

export async function currentDatabase(client: pg.Client): Promise<string> {
  return (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db as string;
}

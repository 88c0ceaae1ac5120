import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { type PauseAck, type PauseEvent } from '../placement/tenant-pauses.js';
import { CONTROL_EVENTS_APPLICATION } from '../tenancy/control-events.js';
import { controlAckChannel, controlChannel } from '../tenancy/control.js';
import { quoteIdent } from '../tenancy/names.js';
import { lockKeySql } from './control-schema.js';
import { audit, errorMessage, inTransaction, type LifecycleContext, LifecycleError, refused } from './context.js';
import { findPgDump, type FoundTool, serverMajor, toolEnv, toolVersion } from './dump.js';
import { grantTenantSchema } from './provision.js';
import { dropTenantDatabase, ensureTenantDatabase } from './tenant-database.js';
import { type ActionResult, requireControl, tenantRow, withAudit } from './tenants.js';
import { registeredSchema, tenantSchema } from './tenant-names.js';
import { type TenantPlacement, tenantPlacement } from './tenant-placement.js';
import { pipeTools } from './tool-pipe.js';

/** How often the mover renews the pause, and how long a proxy keeps one nobody renews. */
const RENEW_MS = 1_000;
const LEASE_MS = 10_000;
/** How often the listening proxies are counted again while acknowledgements are awaited. */
const RECOUNT_MS = 100;
const APPLICATION = 'pgfence-move';
const COPY_TIMEOUT_MS = 60 * 60_000;

export interface MoveOptions {
  /** `TARGET` or `TARGET/DATABASE`. */
  to: string;
  /** The longest every listening proxy may take to hold no backend of the tenant (default 10 s). */
  pauseTimeoutMs?: number;
  /** Drop the source schema after the flip instead of keeping it renamed. */
  dropSource?: boolean;
  /** A pg_dump to use (pg_restore is taken from its directory). */
  pgDump?: string;
}

/** Milliseconds each phase took; `paused` is from the first pause announcement to the resume's commit. */
export interface MovePhases {
  pause: number;
  /** pg_dump piped into pg_restore. */
  copy: number;
  verify: number;
  flip: number;
  paused: number;
}

/** pg_restore of the same install as pg_dump (and of its major). */
async function findPgRestore(dump: FoundTool): Promise<FoundTool> {
  const file = dump.path.includes('/') ? path.join(path.dirname(dump.path), 'pg_restore') : 'pg_restore';
  const found = await toolVersion(file);
  if (found === null || found.major !== dump.major) {
    throw refused(`pg_restore ${dump.major} was not found beside ${dump.path}${found === null ? '' : ` (found ${found.version})`}: install the client tools of PostgreSQL ${dump.major}`);
  }
  return found;
}

/** Row counts of every table of a schema, by table name. */
async function rowCounts(client: pg.Client, schema: string): Promise<Record<string, number>> {
  const tables = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    [schema],
  );
  const counts: Record<string, number> = {};
  for (const { relname } of tables.rows) {
    const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(schema)}.${quoteIdent(relname)}`);
    counts[relname] = Number(r.rows[0]?.n);
  }
  return counts;
}

async function schemaExists(client: pg.Client, schema: string): Promise<boolean> {
  return (await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema])).rows.length > 0;
}

/** `<schema>_moved_<UTC stamp>`, within Postgres's 63 bytes. */
function keptName(schema: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '');
  const suffix = `_moved_${stamp}`;
  return `${schema.slice(0, 63 - suffix.length)}${suffix}`;
}

/**
 * The pause on every listening proxy: announced at once and renewed every second; `confirm()`
 * announces a new round and waits until every proxy listening now has acknowledged it.
 */
class PauseRound {
  private seq = 0;
  private renewer: NodeJS.Timeout | undefined;
  private readonly acks = new Map<number, PauseAck>();
  private wake: () => void = () => undefined;

  constructor(
    private readonly ctx: LifecycleContext,
    private readonly control: pg.Client,
    private readonly listener: pg.Client,
    private readonly tenant: string,
    readonly move: string,
  ) {
    listener.on('notification', (message) => {
      if (message.channel !== controlAckChannel(ctx.control.schema) || message.payload === undefined) return;
      try {
        const ack = JSON.parse(message.payload) as PauseAck;
        if (ack.tenant !== tenant || ack.move !== move || !Number.isSafeInteger(ack.seq) || !Number.isSafeInteger(ack.since)) return;
        const previous = this.acks.get(message.processId);
        if (previous === undefined || previous.seq <= ack.seq) this.acks.set(message.processId, ack);
        this.wake();
      } catch {
        // Not an acknowledgement: ignored.
      }
    });
  }

  async start(): Promise<void> {
    await this.listener.query(`LISTEN ${quoteIdent(controlAckChannel(this.ctx.control.schema))}`);
    await this.announce();
    this.renewer = setInterval(() => void this.announce().catch(() => undefined), RENEW_MS);
  }

  /** Stops renewing (the proxies' leases run out unless a resume comes first). */
  stop(): void {
    clearInterval(this.renewer);
  }

  /** Every proxy listening now has acknowledged a round announced now; returns their acks by pid. */
  async confirm(deadline: number): Promise<Map<number, PauseAck>> {
    const round = await this.announce();
    for (;;) {
      const listening = await this.listeningProxies();
      const missing = listening.filter((pid) => (this.acks.get(pid)?.seq ?? 0) < round);
      if (missing.length === 0) return new Map(listening.map((pid) => [pid, this.acks.get(pid) as PauseAck]));
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new LifecycleError('failed', `${missing.length} of ${listening.length} listening prox${listening.length === 1 ? 'y' : 'ies'} did not confirm the pause in time: a transaction of the tenant is still running (or a proxy cannot reach the control database)`, { unconfirmed: missing.length });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(RECOUNT_MS, left));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async announce(): Promise<number> {
    const seq = ++this.seq;
    const event: PauseEvent = { tenant: this.tenant, action: 'pause', move: this.move, seq, leaseMs: LEASE_MS };
    await this.control.query('SELECT pg_catalog.pg_notify($1, $2)', [controlChannel(this.ctx.control.schema), JSON.stringify(event)]);
    return seq;
  }

  /** The listening connections of running proxies (src/tenancy/control-events.ts), by backend pid. */
  private async listeningProxies(): Promise<number[]> {
    const r = await this.control.query<{ pid: number }>(
      'SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = current_database() AND application_name = $1',
      [CONTROL_EVENTS_APPLICATION],
    );
    return r.rows.map((row) => row.pid);
  }
}

/**
 * `pgfence tenant move ID --to TARGET[/DATABASE]`: under the lifecycle lock, pauses the tenant on
 * every listening proxy (new transactions wait, transactions in flight finish, session-pooling
 * sessions end), copies its schema with pg_dump | pg_restore, checks every table's row count on
 * both sides, then flips tenants.placement and announces the resume in one transaction: waiting
 * transactions go to the new placement. The old schema is kept, renamed `<schema>_moved_<stamp>`
 * (or dropped with --drop-source). Any failure before the flip drops the partial copy and resumes
 * the tenant where it was. Audited: `move-start`, then `move` ok or failed.
 */
export async function moveTenant(ctx: LifecycleContext, id: string, options: MoveOptions): Promise<ActionResult> {
  if (tenantSchema(ctx.config, id) === null) throw refused('tenancy.mode is row: a tenant has no schema of its own to move');
  const pauseTimeoutMs = options.pauseTimeoutMs ?? 10_000;
  return withAudit(ctx, 'move', id, async (control) => {
    const to = tenantPlacement(ctx, options.to);
    await requireControl(ctx, control);
    const row = await tenantRow(ctx, control, id);
    if (row === undefined) throw refused(`unknown tenant "${id}"`);
    if (row.status === 'provisioning') throw refused(`tenant "${id}" is still being provisioned`);
    const schema = registeredSchema(ctx.config, id, row.schema_name) as string;
    const from = tenantPlacement(ctx, row.placement);
    const detail: Record<string, unknown> = { schema, from: from.label, to: to.label };
    if (from.label === to.label) {
      await audit(ctx, control, { action: 'move', tenant: id, outcome: 'unchanged', detail });
      return { action: 'move', tenant: id, outcome: 'unchanged', message: `tenant "${id}" is already on ${to.label}`, data: detail };
    }
    const key = lockKeySql(ctx.control.schema);
    const locked = await control.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${key.sql}) AS ok`, key.params);
    if (locked.rows[0]?.ok !== true) throw refused('another lifecycle command (a migrate, a create or a move) holds the lifecycle lock: try again when it is done');

    const open: pg.Client[] = [];
    const connect = async (where: TenantPlacement): Promise<pg.Client> => {
      try {
        const client = await where.connect(APPLICATION);
        open.push(client);
        return client;
      } catch (error) {
        if (error instanceof LifecycleError) throw error;
        throw new LifecycleError('failed', `cannot reach ${where.label}: ${errorMessage(error)}`);
      }
    };
    let madeDatabase = false;
    try {
      const source = await connect(from);
      if (!(await schemaExists(source, schema))) throw refused(`the schema "${schema}" is not on ${from.label}, where the registry places tenant "${id}"`);
      const sourceMajor = await serverMajor(source);
      const pgDump = await findPgDump(sourceMajor, options.pgDump);
      const pgRestore = await findPgRestore(pgDump);
      // A database of its own (`--to eu-2/acme_db`) is made as `create` makes one, and dropped again if the move fails.
      try {
        madeDatabase = await ensureTenantDatabase(ctx, to, id);
      } catch (error) {
        throw new LifecycleError('failed', `cannot reach ${to.label}: ${errorMessage(error)}`);
      }
      if (madeDatabase) detail['database'] = 'made for the tenant';
      const target = await connect(to);
      const targetMajor = await serverMajor(target);
      if (targetMajor < sourceMajor) throw refused(`${to.label} runs PostgreSQL ${targetMajor}, older than the source's ${sourceMajor}: a dump does not restore into an older major`);
      if (await schemaExists(target, schema)) {
        throw refused(`the schema "${schema}" exists already on ${to.label}: a copy from an earlier move? Drop it there (or move to another placement)`);
      }
      await audit(ctx, control, { action: 'move-start', tenant: id, outcome: 'ok', detail });

      const acks = await ctx.connect(`${APPLICATION}-acks`);
      open.push(acks);
      const pause = new PauseRound(ctx, control, acks, id, randomBytes(8).toString('hex'));
      const phases: Partial<MovePhases> = {};
      const pausedAt = Date.now();
      let copy: Copy = 'none';
      let flipped = false;
      try {
        await pause.start();
        const before = await pause.confirm(pausedAt + pauseTimeoutMs);
        phases.pause = Date.now() - pausedAt;

        // Restored while it is dumped, in one transaction: a failure leaves nothing there. The
        // source's privileges stay behind: the target's service role (and the tenant's role) are granted as `create` does.
        let at = Date.now();
        copy = 'attempted';
        detail['copiedBytes'] = await pipeTools(
          { name: 'pg_dump', path: pgDump.path, args: [`--schema=${quoteIdent(schema)}`, '--format=custom', '--compress=0', '--no-subscriptions', '--no-password'], env: toolEnv(ctx.targetAt(from.placement), APPLICATION) },
          { name: 'pg_restore', path: pgRestore.path, args: ['--exit-on-error', '--single-transaction', '--no-owner', '--no-privileges', `--dbname=${ctx.targetAt(to.placement).database}`, '--no-password'], env: toolEnv(ctx.targetAt(to.placement), APPLICATION) },
          COPY_TIMEOUT_MS,
        );
        copy = 'restored';
        await inTransaction(target, () => grantTenantSchema(ctx, target, id, schema, to.serviceRole));
        phases.copy = Date.now() - at;

        at = Date.now();
        const [expected, restored] = await Promise.all([rowCounts(source, schema), rowCounts(target, schema)]);
        if (JSON.stringify(expected) !== JSON.stringify(restored)) {
          throw new LifecycleError('failed', `the copy on ${to.label} does not match the source (row counts per table differ)`, { sourceRows: expected, copyRows: restored });
        }
        detail['rows'] = expected;
        phases.verify = Date.now() - at;

        // Every proxy must have stayed paused since before the copy: one that resumed (a lost lease) may have written to the source meanwhile.
        at = Date.now();
        const after = await pause.confirm(Date.now() + pauseTimeoutMs);
        pause.stop();
        const broken = [...after].filter(([pid, ack]) => before.get(pid)?.since !== ack.since);
        if (broken.length > 0) throw new LifecycleError('failed', `${broken.length} prox${broken.length === 1 ? 'y was' : 'ies were'} not paused for the whole copy (started meanwhile, or lost the pause): nothing was moved`);
        await inTransaction(control, async () => {
          const now = await tenantRow(ctx, control, id, true);
          if (now === undefined || now.placement !== row.placement) throw new LifecycleError('failed', `tenant "${id}" was dropped or re-placed during the move`);
          await control.query(`UPDATE ${ctx.schemaSql}.tenants SET placement = $2, updated_at = now() WHERE id = $1`, [id, to.stored]);
          const resume: PauseEvent = { tenant: id, action: 'resume', move: pause.move };
          await control.query('SELECT pg_catalog.pg_notify($1, $2)', [controlChannel(ctx.control.schema), JSON.stringify(resume)]);
          phases.flip = Date.now() - at;
          phases.paused = Date.now() - pausedAt;
          await audit(ctx, control, { action: 'move', tenant: id, outcome: 'ok', detail: { ...detail, phasesMs: phases, move: pause.move } });
        });
        flipped = true;
      } catch (error) {
        pause.stop();
        if (flipped) throw error;
        const undone = await undoCopy(ctx, control, target, schema, copy, id, pause.move);
        if (madeDatabase) undone['database'] = `${to.label} was made for this move: dropped`;
        const failure = error instanceof LifecycleError ? error : new LifecycleError('failed', errorMessage(error));
        throw new LifecycleError(failure.outcome, `${failure.message}; tenant "${id}" stays on ${from.label}`, { ...failure.detail, ...detail, ...undone, phasesMs: phases, move: pause.move });
      }
      madeDatabase = false;
      phases.paused = Date.now() - pausedAt;

      // The source is kept (renamed, so nothing still pointed at it writes there unnoticed) or dropped.
      const kept = keptName(schema, new Date());
      let sourceFate: string;
      try {
        if (options.dropSource === true) {
          await source.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
          sourceFate = 'dropped';
        } else {
          await source.query(`ALTER SCHEMA ${quoteIdent(schema)} RENAME TO ${quoteIdent(kept)}`);
          sourceFate = `kept as "${kept}"`;
        }
      } catch (error) {
        sourceFate = `left as "${schema}": ${errorMessage(error)}`;
        ctx.log.warn({ tenant: id, err: errorMessage(error) }, 'tenant moved; the source schema could not be renamed or dropped');
      }
      return {
        action: 'move',
        tenant: id,
        outcome: 'ok',
        message: `tenant "${id}" moved from ${from.label} to ${to.label} (paused ${phases.paused} ms: pause confirmed in ${phases.pause} ms, copy ${phases.copy} ms, verify ${phases.verify} ms, flip ${phases.flip} ms); the source schema on ${from.label} is ${sourceFate}`,
        data: { ...detail, phasesMs: phases, source: sourceFate },
      };
    } finally {
      await control.query(`SELECT pg_catalog.pg_advisory_unlock(${key.sql})`, key.params).catch(() => undefined);
      for (const client of open) await client.end().catch(() => undefined);
      // Not moved: a database made for the tenant by this run goes again (after its connections end).
      if (madeDatabase) await dropTenantDatabase(ctx, to).catch((error: unknown) => ctx.log.warn({ tenant: id, err: errorMessage(error) }, 'the database made for the move could not be dropped'));
    }
  });
}

/** How far the copy got: a restore that failed left nothing (one transaction), a restored one is there. */
type Copy = 'none' | 'attempted' | 'restored';

/**
 * Before the flip: the copy dropped when the restore had committed it (the schema was not there
 * before; a failed restore is never followed by a drop, which could hit a schema someone made
 * there meanwhile), the tenant resumed where it was.
 */
async function undoCopy(ctx: LifecycleContext, control: pg.Client, target: pg.Client, schema: string, copy: Copy, id: string, move: string): Promise<Record<string, string>> {
  const undone: Record<string, string> = {};
  if (copy === 'attempted') undone['copy'] = 'rolled back (pg_restore runs in one transaction)';
  if (copy === 'restored') {
    await target.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`).then(
      () => (undone['copy'] = 'dropped'),
      (error: unknown) => (undone['copy'] = `the partial copy "${schema}" could not be dropped: ${errorMessage(error)}`),
    );
  }
  const resume: PauseEvent = { tenant: id, action: 'resume', move };
  // Not sent (the control database is gone): each proxy's lease resumes the tenant within seconds.
  await control.query('SELECT pg_catalog.pg_notify($1, $2)', [controlChannel(ctx.control.schema), JSON.stringify(resume)]).then(
    () => (undone['resume'] = 'announced'),
    () => (undone['resume'] = 'not announced: the proxies resume when their pause lease ends'),
  );
  return undone;
}

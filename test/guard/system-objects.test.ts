import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPgCatalogNames } from '../../scripts/generate-pg-catalog-names.js';
import type { Guard } from '../../src/guard/index.js';
import { PG_CATALOG_NAMES } from '../../src/guard/pg-catalog-names.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACME, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

describe('objects of the system schemas (pg_catalog is searched before the pin)', () => {
  it("an unqualified name pg_catalog holds means pg_catalog's object: the message names it and says how to name the own one", () => {
    const verdict = guard.check('DROP FUNCTION uuidv7()', ACME);
    expect(verdict).toMatchObject({ allowed: false, reason: 'forbidden_statement', sqlstate: '42501' });
    if (!verdict.allowed) expect(verdict.message).toMatch(/^pgfence: dropping pg_catalog\.uuidv7 \(.*name your own object with its schema\)/);
    expect(guard.check('DROP FUNCTION tenant_acme.uuidv7()', ACME)).toEqual({ allowed: true });
  });

  it('the kind decides where a name is looked up: a type named like a catalog table is the tenant\'s', () => {
    expect(guard.check('DROP TYPE pg_class', ACME)).toMatchObject({ allowed: false }); // pg_class's row type
    expect(guard.check('DROP TYPE pg_jobs', ACME)).toEqual({ allowed: true });
    expect(guard.check('DROP TABLE point', ACME)).toEqual({ allowed: true }); // point is a type, not a relation
    expect(guard.check('DROP TYPE point', ACME)).toMatchObject({ allowed: false });
  });

  it('creating under a name pg_catalog holds is allowed: new objects go to the first schema of the pin', () => {
    for (const sql of [
      "CREATE FUNCTION lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'",
      'CREATE TABLE pg_class (id int)',
      'CREATE VIEW pg_tables AS SELECT 1 AS x',
      'CREATE TYPE point AS (x int, y int)',
    ]) {
      expect(guard.check(sql, ACME), sql).toEqual({ allowed: true });
    }
  });

  it('a view that reads a system relation anywhere is refused: LOCK TABLE and FOR UPDATE on a view reach what it reads', () => {
    for (const sql of [
      'CREATE VIEW v AS SELECT * FROM pg_proc',
      'CREATE VIEW v AS SELECT * FROM (SELECT oid, prosrc FROM pg_proc) p',
      'CREATE VIEW v AS SELECT proname FROM pg_proc UNION SELECT relname FROM pg_class',
      'CREATE VIEW v AS WITH c AS (SELECT * FROM information_schema.columns) SELECT * FROM c',
    ]) {
      const verdict = guard.check(sql, ACME);
      expect(verdict, sql).toMatchObject({ allowed: false, reason: 'forbidden_statement' });
      if (!verdict.allowed) expect(verdict.message).toMatch(/^pgfence: a view that reads (pg_catalog|information_schema)\./);
    }
    expect(guard.check('CREATE VIEW v AS SELECT i.id, (SELECT count(*) FROM orders o WHERE o.item_id = i.id) FROM items i', ACME)).toEqual({ allowed: true });
  });
});

describe('the generated pg_catalog names (src/guard/pg-catalog-names.ts)', () => {
  let db: TestDatabase;
  let client: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase('pg_catalog_names');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it("hold every name the test server's pg_catalog has (else: npx tsx scripts/generate-pg-catalog-names.ts)", async () => {
    const server = await readPgCatalogNames(client);
    for (const [kind, names] of Object.entries(PG_CATALOG_NAMES)) {
      const missing = (server[kind] ?? []).filter((name) => !names.has(name));
      expect(missing, kind).toEqual([]);
    }
    expect(Object.keys(server).sort()).toEqual(Object.keys(PG_CATALOG_NAMES).sort());
  });
});

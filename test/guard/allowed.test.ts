import { beforeAll, describe, expect, it } from 'vitest';
import type { Guard } from '../../src/guard/index.js';
import { ACME, sharedGuard } from './fixtures.js';

/** Everyday statements of tenant acme (and of psql, pgbench, drivers) that must go through untouched. */
const ALLOWED: Array<[string, string]> = [
  ['empty string', ''],
  ['whitespace only', '   \n\t'],
  ['comment only', '-- nothing to see here'],
  ['block comment only', '/* nothing */'],
  ['lone semicolons', ';;'],
  ['select constant', 'SELECT 1'],
  ['select star', 'SELECT * FROM items'],
  ['join', 'SELECT i.id, o.total FROM items i JOIN orders o ON o.item_id = i.id LEFT JOIN customers c USING (customer_id)'],
  ['join using several columns', 'SELECT * FROM a JOIN b USING (x, y)'],
  ['own schema qualified', 'SELECT * FROM tenant_acme.items'],
  ['own schema quoted', 'SELECT * FROM "tenant_acme"."items"'],
  ['own schema in upper case folds', 'SELECT * FROM TENANT_ACME.items'],
  ['shared schema', 'SELECT * FROM public.plans'],
  ['three-part column in own schema', 'SELECT tenant_acme.items.id FROM tenant_acme.items'],
  ['CTE', 'WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval \'1 day\') SELECT count(*) FROM recent'],
  ['recursive CTE with SEARCH and CYCLE', 'WITH RECURSIVE t(n, p) AS (SELECT 1, 0 UNION ALL SELECT n + 1, n FROM t WHERE n < 5) SEARCH DEPTH FIRST BY n SET ord CYCLE n, p SET is_cycle USING path SELECT * FROM t'],
  ['data-modifying CTE', 'WITH moved AS (DELETE FROM inbox WHERE done RETURNING *) INSERT INTO archive SELECT * FROM moved'],
  ['window function', 'SELECT id, rank() OVER (PARTITION BY customer_id ORDER BY total DESC) FROM orders'],
  ['named window', 'SELECT sum(total) OVER w FROM orders WINDOW w AS (ORDER BY created_at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)'],
  ['FILTER', 'SELECT count(*) FILTER (WHERE status = \'open\'), count(*) FROM tickets'],
  ['GROUPING SETS', 'SELECT region, product, sum(amount) FROM sales GROUP BY GROUPING SETS ((region), (product), ())'],
  ['ROLLUP and CUBE', 'SELECT a, b, count(*) FROM t GROUP BY ROLLUP (a), CUBE (b)'],
  ['ILIKE', "SELECT * FROM customers WHERE name ILIKE $1 || '%'"],
  ['ANY of an array parameter', 'SELECT * FROM items WHERE tenant_key = $1 AND id = ANY($2::int[])'],
  ['FOR UPDATE SKIP LOCKED', 'SELECT * FROM jobs WHERE state = \'queued\' ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED'],
  ['INSERT ON CONFLICT', "INSERT INTO counters (k, v) VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET v = counters.v + EXCLUDED.v"],
  ['INSERT ... RETURNING', "INSERT INTO items (note) VALUES ('x') RETURNING id, created_at"],
  ['UPDATE ... FROM', 'UPDATE orders o SET total = s.total FROM order_sums s WHERE s.id = o.id'],
  ['DELETE ... USING', 'DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.deleted'],
  ['MERGE', 'MERGE INTO stock s USING deliveries d ON s.item = d.item WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty WHEN NOT MATCHED THEN INSERT VALUES (d.item, d.qty)'],
  ['LATERAL', 'SELECT * FROM customers c, LATERAL (SELECT * FROM orders o WHERE o.customer_id = c.id LIMIT 3) recent'],
  ['ROWS FROM', 'SELECT * FROM ROWS FROM (generate_series(1, 3), unnest(ARRAY[1, 2])) AS t(a, b)'],
  ['JSON functions', "SELECT data->>'name', jsonb_path_query(data, '$.tags[*]') FROM docs WHERE data @> '{\"a\": 1}'"],
  ['JSON_TABLE', "SELECT * FROM JSON_TABLE('[1,2]'::jsonb, '$[*]' COLUMNS (v int PATH '$'))"],
  ['COPY FROM STDIN', 'COPY items (id, note) FROM STDIN WITH (FORMAT csv, HEADER true)'],
  ['COPY TO STDOUT with FORCE_QUOTE columns', 'COPY items TO STDOUT WITH (FORMAT csv, FORCE_QUOTE (id, note))'],
  ['COPY query TO STDOUT', 'COPY (SELECT * FROM items WHERE id > 10) TO STDOUT'],
  ['CREATE TABLE unqualified', 'CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, created_at timestamptz DEFAULT now())'],
  ['CREATE TABLE in own schema', 'CREATE TABLE tenant_acme.notes2 (id serial, ref int REFERENCES tenant_acme.notes (id) ON DELETE CASCADE)'],
  ['CREATE TABLE with constraints', 'CREATE TABLE t2 (a int, b int, PRIMARY KEY (a, b), UNIQUE (b) INCLUDE (a), CHECK (a > 0))'],
  ['CREATE TABLE LIKE and PARTITION', 'CREATE TABLE events (LIKE items INCLUDING ALL) PARTITION BY RANGE (created_at)'],
  ['CREATE INDEX', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS items_note_idx ON items USING btree (lower(note) text_pattern_ops) WHERE note IS NOT NULL'],
  ['CREATE VIEW', 'CREATE OR REPLACE VIEW open_tickets (id, title) AS SELECT id, title FROM tickets WHERE status = \'open\''],
  ['CREATE MATERIALIZED VIEW', 'CREATE MATERIALIZED VIEW daily AS SELECT date_trunc(\'day\', created_at) d, count(*) FROM orders GROUP BY 1'],
  ['CREATE SEQUENCE OWNED BY', 'CREATE SEQUENCE note_seq OWNED BY notes.id'],
  ['CREATE TYPE enum', "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')"],
  ['CREATE OPERATOR over an own function', 'CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = tenant_acme.int_eq, COMMUTATOR = ===)'],
  ['CREATE AGGREGATE', "CREATE AGGREGATE my_sum(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0')"],
  ['CREATE DOMAIN', "CREATE DOMAIN email AS text CHECK (VALUE ~ '@')"],
  ['ALTER TABLE', 'ALTER TABLE items ADD COLUMN tags text[] DEFAULT \'{}\', ALTER COLUMN note SET NOT NULL'],
  ['COMMENT ON COLUMN', "COMMENT ON COLUMN items.note IS 'free text'"],
  ['DROP TRIGGER ON table', 'DROP TRIGGER IF EXISTS audit ON items'],
  ['CREATE TRIGGER with arguments and columns', "CREATE TRIGGER audit AFTER UPDATE OF note, tags ON items FOR EACH ROW EXECUTE FUNCTION audit_row('items', 'note')"],
  ['CREATE POLICY', "CREATE POLICY own_rows ON items USING (tenant_key = current_setting('app.current_tenant_id'))"],
  ['SQL function', 'CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$'],
  ['SQL function with BEGIN ATOMIC', 'CREATE FUNCTION total(c int) RETURNS numeric LANGUAGE sql BEGIN ATOMIC SELECT sum(total) FROM orders WHERE customer_id = c; END'],
  ['PL/pgSQL trigger function', "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); NEW.tags[1] := 'x'; RETURN NEW; END $$"],
  ['PL/pgSQL with static SQL, %TYPE and %ROWTYPE', 'CREATE FUNCTION bump(i int) RETURNS void LANGUAGE plpgsql AS $$ DECLARE r items%ROWTYPE; n items.id%TYPE; q tenant_acme.items%ROWTYPE; BEGIN SELECT * INTO r FROM items WHERE id = i; UPDATE items SET note = r.note || \'!\' WHERE id = i; n := (SELECT count(*) FROM tenant_acme.items); END $$'],
  ['DO block with static SQL', "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM items) THEN INSERT INTO items (note) VALUES ('seed'); END IF; END $$"],
  ['CALL', 'CALL refresh_stats(1)'],
  ['TEMP table', 'CREATE TEMP TABLE scratch (x int) ON COMMIT DROP'],
  ['pg_temp qualified', 'SELECT * FROM pg_temp.scratch'],
  ['pg_catalog functions', 'SELECT pg_catalog.now(), pg_catalog.lower(note), current_setting(\'search_path\'), pg_backend_pid() FROM items'],
  ['own relation named like a catalog view', 'SELECT * FROM tenant_acme.pg_stat_activity'],
  ['pg_settings read', "SELECT name, setting FROM pg_settings WHERE name = 'work_mem'"],
  ['pg_catalog table', 'SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = \'tenant_acme\'::regnamespace'],
  ['information_schema', "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'tenant_acme' ORDER BY ordinal_position"],
  ['nextval unqualified', "SELECT nextval('my_seq')"],
  ['nextval in own schema', "SELECT nextval('tenant_acme.my_seq'), currval('\"tenant_acme\".my_seq')"],
  ['nextval of a serial sequence', "SELECT setval(pg_get_serial_sequence('items', 'id'), 42)"],
  ['regclass literal in shared schema', "SELECT 'public.t'::regclass, 'items'::regclass::oid, to_regclass('tenant_acme.items')"],
  ['regtype and regproc', "SELECT 'int4'::regtype, 'pg_catalog.now'::regproc, 'tenant_acme.add(int, int)'::regprocedure"],
  ['regclass of a column', 'SELECT c.oid::pg_catalog.regclass, $1::regclass FROM pg_catalog.pg_class c'],
  ['has_table_privilege', "SELECT has_table_privilege('tenant_acme.items', 'SELECT'), has_schema_privilege('tenant_acme', 'USAGE')"],
  ['table sizes', "SELECT pg_size_pretty(pg_total_relation_size('items')), pg_relation_size('tenant_acme.items')"],
  ['U& identifier', 'SELECT * FROM U&"tenant\\005facme".items'],
  ['cursor_to_xml', "SELECT cursor_to_xml('c', 10, false, false, '')"],
  ['table_to_xml on own table', "SELECT table_to_xml('tenant_acme.items', true, false, '')"],
  ['BEGIN', 'BEGIN ISOLATION LEVEL REPEATABLE READ'],
  ['COMMIT', 'COMMIT'],
  ['ROLLBACK', 'ROLLBACK'],
  ['SAVEPOINT and ROLLBACK TO', 'SAVEPOINT a; ROLLBACK TO SAVEPOINT a; RELEASE a'],
  ['SET statement_timeout', 'SET statement_timeout = 5000'],
  ['SET LOCAL work_mem', "SET LOCAL work_mem = '64MB'"],
  ['SET application_name', "SET application_name TO 'billing'"],
  ['SET TIME ZONE', "SET TIME ZONE 'UTC'"],
  ['SET TRANSACTION', 'SET TRANSACTION READ ONLY'],
  ['SET SESSION CHARACTERISTICS', 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE'],
  ['set_config of a harmless setting', "SELECT set_config('statement_timeout', '1000', true)"],
  ['SHOW search_path', 'SHOW search_path'],
  ['LISTEN / NOTIFY / UNLISTEN', "LISTEN jobs; NOTIFY jobs, 'hello'; UNLISTEN jobs"],
  ['NOTIFY with a payload (rewritten to the tenant channel by the session)', "NOTIFY jobs, 'x'"],
  ['PREPARE / EXECUTE / DEALLOCATE', 'PREPARE q(int) AS SELECT * FROM items WHERE id = $1; EXECUTE q(1); DEALLOCATE q'],
  ['DECLARE / FETCH / CLOSE', 'DECLARE c CURSOR FOR SELECT * FROM items; FETCH 10 FROM c; CLOSE c'],
  ['EXPLAIN ANALYZE', 'EXPLAIN (ANALYZE, BUFFERS, FORMAT json) SELECT * FROM items WHERE id = 1'],
  ['DISCARD PLANS / SEQUENCES / TEMP', 'DISCARD PLANS; DISCARD SEQUENCES; DISCARD TEMP'],
  ['VACUUM ANALYZE a table', 'VACUUM (ANALYZE) items'],
  ['TRUNCATE own tables', 'TRUNCATE items, tenant_acme.orders RESTART IDENTITY'],
  ['LOCK own table', 'LOCK TABLE items IN SHARE MODE'],
  ['ALTER TABLE SET SCHEMA to own schema', 'ALTER TABLE public.staging SET SCHEMA tenant_acme'],
  ['GRANT on own table', 'GRANT SELECT (id, note) ON items TO PUBLIC'],
  ['advisory lock in a transaction', 'SELECT pg_advisory_xact_lock(42)'],
  ['ORDER BY USING operator', 'SELECT * FROM items ORDER BY id USING OPERATOR(pg_catalog.<)'],
  ['COLLATE', 'SELECT note COLLATE "C", note COLLATE pg_catalog."default" FROM items'],
  // names pg_catalog does not hold resolve to the tenant's own objects; new objects go to its schema
  ['writes to an own table named pg_*', "INSERT INTO pg_jobs VALUES (1, 'queued'); UPDATE pg_jobs SET state = 'done'; DELETE FROM pg_jobs"],
  ['DDL on own objects named pg_*', "ALTER TABLE pg_jobs ADD COLUMN at timestamptz; CREATE INDEX ON pg_jobs (state); COMMENT ON TABLE pg_jobs IS 'queue'; LOCK TABLE pg_jobs; DROP TABLE pg_jobs"],
  ['an own function named like a built-in is created in the own schema', "CREATE OR REPLACE FUNCTION uuidv7() RETURNS uuid LANGUAGE sql AS 'SELECT gen_random_uuid()'"],
  ['an own function named like a built-in, by its qualified name', 'ALTER FUNCTION tenant_acme.uuidv7() STABLE; COMMENT ON FUNCTION tenant_acme.uuidv7() IS $$v7$$; DROP FUNCTION tenant_acme.uuidv7()'],
  ['own enum and domain', "ALTER TYPE mood ADD VALUE 'meh'; ALTER DOMAIN email SET NOT NULL; DROP TYPE IF EXISTS old_type"],
  ['own collation by its qualified name', 'ALTER COLLATION tenant_acme.german REFRESH VERSION'],
  ['own text search configuration', 'CREATE TEXT SEARCH CONFIGURATION my_english (COPY = english); ALTER TEXT SEARCH CONFIGURATION my_english DROP MAPPING FOR email'],
  ['COPY a catalog TO STDOUT', 'COPY pg_catalog.pg_description TO STDOUT'],
  ['a view over an own table', 'CREATE VIEW recent AS SELECT * FROM items WHERE id > 10'],
  // a computed reg* value only resolves a name to an OID (TypeORM's schema loader)
  ['computed regclass for obj_description', `SELECT obj_description(('"' || table_schema || '"."' || table_name || '"')::regclass, 'pg_class') FROM information_schema.tables WHERE table_schema = 'tenant_acme'`],
  ['computed regtype', `SELECT ('"' || udt_schema || '"."' || udt_name || '"')::regtype FROM information_schema.columns WHERE table_schema = 'tenant_acme'`],
  // text search configurations and dictionaries by name
  ['text search with built-in configurations', "SELECT to_tsvector('english', body), to_tsquery('pg_catalog.simple', 'x'), ts_lexize('english_stem', 'trains') FROM docs"],
  ['text search with the configuration in a column', 'SELECT to_tsvector(lang::regconfig, body) FROM docs'],
  ['ts_headline with a literal document', "SELECT ts_headline('The quick brown fox', to_tsquery('fox'), 'MaxWords=2')"],
  ['tsvector_update_trigger with a built-in configuration', "CREATE TRIGGER tsv BEFORE INSERT OR UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION tsvector_update_trigger(tsv, 'pg_catalog.english', body)"],
  ['pg_get_sequence_data of an own sequence', "SELECT * FROM pg_get_sequence_data('counter')"],
  ['statistics import into an own table (pg_restore of a Postgres 18 dump)', "SELECT pg_restore_relation_stats('version', 180004::integer, 'schemaname', 'tenant_acme', 'relname', 'items', 'relpages', 1::integer)"],
  ['pg_input_is_valid with a built-in type', "SELECT pg_input_is_valid('42', 'integer'), pg_input_error_info('x', 'numeric(4,2)')"],
  // pgbench, builtin TPC-B-like script and initialisation
  ['pgbench update accounts', 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2'],
  ['pgbench select', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1'],
  ['pgbench update tellers', 'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2'],
  ['pgbench update branches', 'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2'],
  ['pgbench history', 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)'],
  ['pgbench end', 'END'],
  ['pgbench init drop', 'drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers'],
  ['pgbench init create', 'create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))'],
  ['pgbench init copy', 'copy pgbench_accounts from stdin with (freeze on)'],
  ['pgbench init vacuum', 'vacuum analyze pgbench_branches'],
  ['pgbench init primary key', 'alter table pgbench_branches add primary key (bid)'],
  [
    'pgbench partition probe',
    "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1",
  ],
];

/** What psql sends for \dt, \dt+, \dn and \d items (psql 17). */
const PSQL: Array<[string, string]> = [
  [
    '\\dt',
    `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`,
  ],
  [
    '\\dt+',
    `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner",
  CASE c.relpersistence WHEN 'p' THEN 'permanent' WHEN 't' THEN 'temporary' WHEN 'u' THEN 'unlogged' END as "Persistence",
  am.amname as "Access method",
  pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) as "Size",
  pg_catalog.obj_description(c.oid, 'pg_class') as "Description"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`,
  ],
  [
    '\\dn',
    `SELECT n.nspname AS "Name",
  pg_catalog.pg_get_userbyid(n.nspowner) AS "Owner"
FROM pg_catalog.pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY 1;`,
  ],
  [
    '\\d items: find the relation',
    `SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(items)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;`,
  ],
  [
    '\\d items: relation details',
    `SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity, c.relforcerowsecurity, false AS relhasoids, c.relispartition, pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')
, c.reltablespace, CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END, c.relpersistence, c.relreplident, am.amname
FROM pg_catalog.pg_class c
 LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)
LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid)
WHERE c.oid = '16385';`,
  ],
  [
    '\\d items: columns',
    `SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '16385' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;`,
  ],
  [
    '\\d items: indexes',
    `SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),
  pg_catalog.pg_get_constraintdef(con.oid, true), contype, condeferrable, condeferred, i.indisreplident, c2.reltablespace
FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i
  LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x'))
WHERE c.oid = '16385' AND c.oid = i.indrelid AND i.indexrelid = c2.oid
ORDER BY i.indisprimary DESC, c2.relname;`,
  ],
  [
    '\\d items: policies',
    `SELECT pol.polname, pol.polpermissive,
  CASE WHEN pol.polroles = '{0}' THEN NULL ELSE pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') END,
  pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
  pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid),
  CASE pol.polcmd
    WHEN 'r' THEN 'SELECT'
    WHEN 'a' THEN 'INSERT'
    WHEN 'w' THEN 'UPDATE'
    WHEN 'd' THEN 'DELETE'
    END AS cmd
FROM pg_catalog.pg_policy pol
WHERE pol.polrelid = '16385' ORDER BY 1;`,
  ],
  [
    '\\d items: statistics',
    `SELECT oid, stxrelid::pg_catalog.regclass, stxnamespace::pg_catalog.regnamespace::pg_catalog.text AS nsp, stxname,
pg_catalog.pg_get_statisticsobjdef_columns(oid) AS columns,
  'd' = any(stxkind) AS ndist_enabled,
  'f' = any(stxkind) AS deps_enabled,
  'm' = any(stxkind) AS mcv_enabled,
stxstattarget
FROM pg_catalog.pg_statistic_ext
WHERE stxrelid = '16385'
ORDER BY nsp, stxname;`,
  ],
  [
    '\\d items: publications',
    `SELECT pubname
     , NULL
     , NULL
FROM pg_catalog.pg_publication p
     JOIN pg_catalog.pg_publication_namespace pn ON p.oid = pn.pnpubid
     JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.pnnspid
WHERE pc.oid ='16385' and pg_catalog.pg_relation_is_publishable('16385')
UNION
SELECT pubname
     , pg_get_expr(pr.prqual, c.oid)
     , (CASE WHEN pr.prattrs IS NOT NULL THEN
         (SELECT string_agg(attname, ', ')
           FROM pg_catalog.generate_series(0, pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s,
                pg_catalog.pg_attribute
          WHERE attrelid = pr.prrelid AND attnum = prattrs[s])
        ELSE NULL END) FROM pg_catalog.pg_publication p
     JOIN pg_catalog.pg_publication_rel pr ON p.oid = pr.prpubid
     JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
WHERE pr.prrelid = '16385'
ORDER BY 1;`,
  ],
  [
    '\\d items: triggers',
    `SELECT t.tgname, pg_catalog.pg_get_triggerdef(t.oid, true), t.tgenabled, t.tgisinternal,
  CASE WHEN t.tgparentid != 0 THEN
    (SELECT u.tgrelid::pg_catalog.regclass
     FROM pg_catalog.pg_trigger AS u,
          pg_catalog.pg_partition_ancestors(t.tgrelid) WITH ORDINALITY AS a(relid, depth)
     WHERE u.tgname = t.tgname AND u.tgrelid = a.relid
           AND u.tgparentid = 0
     ORDER BY a.depth LIMIT 1)
  END AS parent
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = '16385' AND (NOT t.tgisinternal OR (t.tgisinternal AND t.tgenabled = 'D') OR
    EXISTS (SELECT 1 FROM pg_catalog.pg_depend WHERE objid = t.oid
        AND refclassid = 'pg_catalog.pg_trigger'::pg_catalog.regclass))
ORDER BY 1;`,
  ],
  [
    '\\d items: inheritance',
    `SELECT c.oid::pg_catalog.regclass, c.relkind, inhdetachpending, pg_catalog.pg_get_expr(c.relpartbound, c.oid)
FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i
WHERE c.oid = i.inhrelid AND i.inhparent = '16385'
ORDER BY pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', c.oid::pg_catalog.regclass::pg_catalog.text;`,
  ],
];

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

describe(`allowed corpus (${ALLOWED.length} statements)`, () => {
  it.each(ALLOWED)('%s', (_name, sql) => {
    expect(guard.check(sql, ACME)).toEqual({ allowed: true });
  });
});

describe(`psql meta-commands (${PSQL.length} statements)`, () => {
  it.each(PSQL)('%s', (_name, sql) => {
    expect(guard.check(sql, ACME)).toEqual({ allowed: true });
  });
});

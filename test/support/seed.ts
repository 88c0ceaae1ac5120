/**
 * What every test database holds (vitest-free, so that scripts can seed a database the same way):
 * per tenant a schema with `items` (owner defaults to the tenant's name), `secrets`, a sequence
 * `counter` and a function `whoami()`, and a shared `public.shared_plans`.
 */

/** Tenants every test proxy knows; `initech` is suspended, `hooli` is listed but has no schema. */
export const TEST_TENANTS = ['acme', 'globex', 'umbrella'] as const;

export const SEED_SQL = `
CREATE TABLE public.shared_plans (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO public.shared_plans VALUES (1, 'free'), (2, 'pro');
${TEST_TENANTS.map(
  (t) => `
CREATE SCHEMA tenant_${t};
CREATE TABLE tenant_${t}.items (id serial PRIMARY KEY, owner text NOT NULL DEFAULT '${t}', note text);
INSERT INTO tenant_${t}.items (note) VALUES ('${t} item 1'), ('${t} item 2');
CREATE TABLE tenant_${t}.secrets (id int PRIMARY KEY, secret text NOT NULL);
INSERT INTO tenant_${t}.secrets VALUES (1, '${t}-secret');
CREATE SEQUENCE tenant_${t}.counter;
CREATE FUNCTION tenant_${t}.whoami() RETURNS text LANGUAGE sql AS $$ SELECT '${t}'::text $$;`,
).join('\n')}
`;

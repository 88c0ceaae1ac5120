import { describe, expect, it } from 'vitest';
import { ACME, sharedGuard } from './fixtures.js';

const PG_DUMP_RESTRICT = "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'";

describe("statements of well-known tools, judged as what they do", () => {
  it("allows pg_dump's restrict_nonsystem_relation_kind statement, as a plain setting to replay", async () => {
    const guard = await sharedGuard();
    for (const text of [PG_DUMP_RESTRICT, `${PG_DUMP_RESTRICT};`, `  ${PG_DUMP_RESTRICT}\n`]) {
      const { analysis, verdict } = guard.inspect(text, ACME);
      expect(verdict.allowed, text).toBe(true);
      expect(analysis.sessionEffects).toEqual([{ kind: 'set', name: 'restrict_nonsystem_relation_kind', value: 'view, foreign-table' }]);
    }
  });

  it('refuses the same shape with any other row or value: only the exact text is known', async () => {
    const guard = await sharedGuard();
    for (const text of [
      PG_DUMP_RESTRICT.replace("'restrict_nonsystem_relation_kind'", "'search_path'"),
      PG_DUMP_RESTRICT.replace("WHERE name = 'restrict_nonsystem_relation_kind'", "WHERE name LIKE 'restrict%'"),
      `${PG_DUMP_RESTRICT}; SELECT 1`,
      PG_DUMP_RESTRICT.replace("'view, foreign-table'", "'tenant_globex'").replace("'restrict_nonsystem_relation_kind'", "'search_path'"),
    ]) {
      expect(guard.inspect(text, ACME).verdict.allowed, text).toBe(false);
    }
  });
});

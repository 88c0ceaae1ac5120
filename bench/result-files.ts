import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The file-name stamp of a run: "2026-11-23T08:19:28.631Z" gives "2026-11-23T08-19Z" (UTC, to the minute). */
export function resultStamp(startedAt: string): string {
  return startedAt.replace(/:\d\d(\.\d+)?Z$/, 'Z').replace(':', '-');
}

/**
 * Writes bench/results/<name>.md and (unless `data` is null) <name>.json, and the markdown again
 * as bench/results/<latest>; returns the .md path. A run never overwrites an earlier one: when
 * <name>.md exists (two runs in the same minute), the name gets "-2", "-3", ….
 */
export async function writeResults(name: string, markdown: string, data: unknown, latest: string): Promise<string> {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  let unique = name;
  for (let n = 2; existsSync(path.join(dir, `${unique}.md`)); n++) unique = `${name}-${n}`;
  const mdPath = path.join(dir, `${unique}.md`);
  await writeFile(mdPath, markdown);
  if (data !== null) await writeFile(path.join(dir, `${unique}.json`), JSON.stringify(data, null, 2) + '\n');
  await writeFile(path.join(dir, latest), markdown);
  return mdPath;
}

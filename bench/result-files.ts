import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The file-name stamp of a run: "2026-11-23T08:19:28.631Z" gives "2026-11-23T08-19Z" (UTC, to the minute). */
export function resultStamp(startedAt: string): string {
  return startedAt.replace(/:\d\d(\.\d+)?Z$/, 'Z').replace(':', '-');
}

/**
 * Writes bench/results/<name>.md and (unless `data` is null) <name>.json, and the markdown again
 * as bench/results/<latest>; returns the .md path.
 */
export async function writeResults(name: string, markdown: string, data: unknown, latest: string): Promise<string> {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const mdPath = path.join(dir, `${name}.md`);
  await writeFile(mdPath, markdown);
  if (data !== null) await writeFile(path.join(dir, `${name}.json`), JSON.stringify(data, null, 2) + '\n');
  await writeFile(path.join(dir, latest), markdown);
  return mdPath;
}

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root (this file is test/packaging/install.ts). */
export const REPO = path.resolve(import.meta.dirname, '../..');

export interface Packed {
  /** Absolute path of the tarball. */
  tarball: string;
  /** Paths inside the package, as `npm pack --json` lists them. */
  files: string[];
}

/** `npm pack` of the repository into `dir`: runs prepack (the build) as a publish would. */
export async function npmPack(dir: string): Promise<Packed> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 });
  // npm prints the lifecycle scripts' output before the JSON on some versions: take the array.
  const json = JSON.parse(stdout.slice(Math.max(0, stdout.search(/^\[/m)))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const entry = json[0];
  if (entry === undefined) throw new Error(`npm pack printed no package: ${stdout}`);
  return { tarball: path.join(dir, entry.filename), files: entry.files.map((f) => f.path) };
}

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  [key: string]: unknown;
}

/**
 * Installs the tarball into the empty folder `app` the way a production deployment does
 * (`--omit=dev --omit=optional`, no install scripts), with the versions of the repository's
 * package-lock.json and without the registry when the npm cache holds them (after `npm ci` it
 * does): the folder gets a lock file made from the repository's, where pgfence's production and
 * optional dependencies sit where they sit in the repository and the dev-only ones are left out.
 * `npm ci --prefer-offline` then only reads the cache; an uncached package is fetched.
 */
export async function installTarball(tarball: string, app: string): Promise<void> {
  const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(await readFile(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const spec = `file:${path.relative(app, tarball)}`;
  const root = { name: 'pgfence-install-check', version: '0.0.0', private: true, dependencies: { pgfence: spec } };
  const packages: Record<string, unknown> = {
    '': root,
    'node_modules/pgfence': {
      version: pkg['version'],
      resolved: spec,
      license: pkg['license'],
      dependencies: pkg['dependencies'],
      optionalDependencies: pkg['optionalDependencies'],
      bin: pkg['bin'],
      engines: pkg['engines'],
    },
  };
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where === '' || entry.dev === true) continue;
    // Needed by a dev tool and by an optional package: for the installed pgfence, optional only.
    const { devOptional, ...rest } = entry;
    packages[where] = devOptional === true ? { ...rest, optional: true } : rest;
  }
  await writeFile(path.join(app, 'package.json'), JSON.stringify(root, null, 2));
  await writeFile(path.join(app, 'package-lock.json'), JSON.stringify({ name: root.name, version: root.version, lockfileVersion: 3, requires: true, packages }, null, 2));
  await run('npm', ['ci', '--omit=dev', '--omit=optional', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
}

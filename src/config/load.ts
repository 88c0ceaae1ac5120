import { readFile } from 'node:fs/promises';
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { substituteEnv } from './env.js';
import { ConfigError } from './errors.js';
import { describeIssues } from './issues.js';
import { formatKeyPath, type KeyedMessage, type KeyPath } from './reference.js';
import { type Config, configSchema } from './schema.js';

export { type ResolvedBackendTarget, resolveBackendTarget } from './backend-target.js';
export { ConfigError, type ConfigProblem } from './errors.js';
export { describeConfig } from './reference.js';

/**
 * YAML text to a validated Config: parse (syntax errors name the line), substitute ${VAR} and
 * ${VAR:-default} in string values, then validate with schema.ts, which also fills the defaults.
 * Every problem found is reported at once in one ConfigError; no secret value is ever quoted.
 * `source` names the text in messages (the file name).
 */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((error) => ({
        line: error.linePos?.[0].line,
        message: `YAML syntax error: ${error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (error) {
    // e.g. "Excessive alias count" from an alias bomb.
    throw new ConfigError(source, [{ message: `YAML error: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` }]);
  }
  const fail = (problems: readonly KeyedMessage[]): ConfigError =>
    new ConfigError(
      source,
      problems
        .map(({ path, message }) => ({ key: formatKeyPath(path), message, line: lineOf(doc, lineCounter, path) }))
        .sort((a, b) => (a.line ?? 0) - (b.line ?? 0)),
    );

  const envProblems: KeyedMessage[] = [];
  const substituted = substituteEnv(raw, env, envProblems);
  if (envProblems.length > 0) throw fail(envProblems);

  const result = configSchema.safeParse(substituted);
  if (!result.success) throw fail(describeIssues(result.error.issues, substituted));
  return result.data;
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(path, [{ message: `cannot read the file${code === undefined ? '' : ` (${code})`}` }]);
  }
  return parseConfig(text, path, env);
}

/** The line of the deepest part of `path` present in the document (the key's own line for a mapping entry). */
function lineOf(doc: Document, counter: LineCounter, path: KeyPath): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
      if (pair === undefined) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof part === 'number') {
      const item: unknown = node.items[part];
      if (item === undefined || item === null) break;
      offset = (item as Node).range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : counter.linePos(offset).line;
}

/** One problem with a configuration: the key it concerns and what is wrong, never a secret value. */
export interface ConfigProblem {
  /** `pool.size`, `tenancy.tenants[2].id`, `(root)`; absent for a problem with the file itself (syntax). */
  readonly key?: string | undefined;
  readonly message: string;
  /** 1-based line in the source, when the key (or the nearest enclosing one) is in the file. */
  readonly line?: number | undefined;
}

/**
 * Every problem with a configuration, one per line, each naming the file, the line when known,
 * and the key: `pgfence.yaml:14: pool.size: expected an integer between 1 and 10000, got "ten"`.
 */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`invalid configuration in ${source} (${count}):\n${problems.map((p) => `  ${formatProblem(source, p)}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatProblem(source: string, problem: ConfigProblem): string {
  const where = problem.line === undefined ? source : `${source}:${problem.line}`;
  return problem.key === undefined ? `${where}: ${problem.message}` : `${where}: ${problem.key}: ${problem.message}`;
}

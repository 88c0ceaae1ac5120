import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on every Linux we run on). */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  pgrp: number;
  /** utime and stime in clock ticks. */
  userTicks: number;
  systemTicks: number;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15
  return { pgrp: Number(fields[2]), userTicks: Number(fields[11]), systemTicks: Number(fields[12]) };
}

function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    if (readStat(pid)?.pgrp === pgid) pids.push(pid);
  }
  return pids;
}

/**
 * CPU time (user + system, ms) used so far by the live processes of a process group: a proxy
 * started with `detached: true` (pgfence and its workers, or runuser and the pgbouncer it runs).
 * The difference of two readings is the group's CPU over the span between them.
 */
export function groupCpuMs(pgid: number): number {
  const { userMs, systemMs } = groupCpuTime(pgid);
  return userMs + systemMs;
}

/** CPU time (ms) split into user space and the kernel (system calls, mostly the sockets'). */
export interface CpuTime {
  userMs: number;
  systemMs: number;
}

/** groupCpuMs split into user and system time, from one reading of /proc. */
export function groupCpuTime(pgid: number): CpuTime {
  let user = 0;
  let system = 0;
  for (const pid of groupMembers(pgid)) {
    const stat = readStat(pid);
    user += stat?.userTicks ?? 0;
    system += stat?.systemTicks ?? 0;
  }
  return { userMs: (user * 1000) / TICKS_PER_SECOND, systemMs: (system * 1000) / TICKS_PER_SECOND };
}

/** Resident memory (VmRSS, kB) of the live processes of a process group. */
export function groupResidentKb(pgid: number): number {
  let kb = 0;
  for (const pid of groupMembers(pgid)) {
    try {
      const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
      kb += Number(line?.split(/\s+/)[1] ?? 0);
    } catch {
      // exited between the listing and the read
    }
  }
  return kb;
}

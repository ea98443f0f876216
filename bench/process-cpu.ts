// CPU used by the processes of one name (Linux /proc), between two readings: tells whether a
// process (the router's workerd) was the bottleneck of a phase. Elsewhere it reads 0.
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export class ProcessCpu {
  private readonly name: string;
  private last: { ticks: number; at: number };

  constructor(name: string) {
    this.name = name;
    this.last = { ticks: this.ticks(), at: Date.now() };
  }

  /** Cores busy since the last reading (1: one core the whole time). */
  cores(): number {
    const now = { ticks: this.ticks(), at: Date.now() };
    const seconds = (now.at - this.last.at) / 1000;
    const cores = seconds > 0 ? (now.ticks - this.last.ticks) / TICKS_PER_SECOND / seconds : 0;
    this.last = now;
    return Math.max(0, cores);
  }

  /** utime + stime of every process named `name`. */
  private ticks(): number {
    let total = 0;
    let pids: string[];
    try {
      pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
    } catch {
      return 0;
    }
    for (const pid of pids) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        // pid (comm) state ...: comm may hold spaces, so split after its closing parenthesis.
        const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        if (comm !== this.name) continue;
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        total += Number(fields[11]) + Number(fields[12]);
      } catch {
        // The process ended between the listing and the read.
      }
    }
    return total;
  }
}

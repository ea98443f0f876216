// What a passing test run prints should be the run itself. Two kinds of output are expected, by
// construction, and dropped here (SLUICE_TEST_VERBOSE=1 shows everything):
// - workerd's notes about connections the tests end on purpose. The pool prints workerd's own log
//   to stderr and leaves out a few such notes itself (vitest-pool-workers' `ignoreMessages`), not
//   these. A refused connection is reported as "uncaught" even when the fetch's rejection is
//   handled (a plain `fetch().catch()` shows it), so that note is the runtime's, not ours.
// - the router's request log (one line per request; test/worker/request-log.test.ts checks it), and
//   its error lines about storage writes cut off by a test that aborts the Durable Objects.
import { isRequestLine } from "../../scripts/request-line.ts";

const VERBOSE = process.env.SLUICE_TEST_VERBOSE === "1";

const WORKERD_NOTES = [
  "disconnected: stream disconnected prematurely", // a stream cut mid-way (sims that drop, clients that leave)
  "disconnected: WebSocket peer disconnected", // the test runner's socket, closed after each file
  "disconnected: pump canceled", // a response body whose client left
  "disconnected: connect(): Connection refused", // a backend that refuses connections (dispatch tests)
  "Network connection lost.", // the same refusal, reported as uncaught by workerd
];

/**
 * Drops workerd's expected notes (and the stack line after each) from this process's output: the
 * pool writes workerd's log to stdout or stderr by level.
 */
export function quietWorkerdNotes(): void {
  if (VERBOSE) return;
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    let dropStack = false;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = String(chunk);
      if (WORKERD_NOTES.some((note) => text.includes(note)) || (dropStack && text.startsWith("stack: "))) {
        dropStack = !text.includes("\nstack: ");
        return true;
      }
      dropStack = false;
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/** For vitest's `onConsoleLog`: false drops the line. */
export function showConsoleLine(line: string): boolean {
  if (VERBOSE) return true;
  if (isRequestLine(line)) return false;
  return !line.includes("Application called abortAllDurableObjects()");
}

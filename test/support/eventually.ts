/**
 * Polls `check` until it returns true, for effects that land asynchronously. Fails the test when
 * `timeoutMs` passes first: a wait that timed out must not let a test carry on in the wrong state.
 * The limit is generous (a loaded machine is slow); a passing test never waits it out.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 25): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  if (!(await check())) throw new Error(`eventually: still false after ${timeoutMs} ms: ${check.toString().slice(0, 200)}`);
}

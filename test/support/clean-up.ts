/**
 * A file's cleanup: runs every step in order, each even when one before it
 * failed (a gateway that fails to drain still leaves its Redis to stop, and
 * nothing runs on into the next test file), then throws what failed, so a
 * real failure is still the hook's.
 */
export async function cleanUpAll(...steps: (() => unknown)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1)
    throw new AggregateError(failures, `${failures.length} cleanup steps failed`);
}

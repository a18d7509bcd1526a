/**
 * Waits out a warm-up, then measures for `seconds`: `onWindow(true/false)`
 * brackets the window so the caller counts only inside it. Resolves to the
 * window's length and this process's CPU use in cores.
 */
export async function measureWindow(
  warmupSeconds: number,
  seconds: number,
  onWindow: (open: boolean) => void,
): Promise<{ elapsed: number; cpuCores: number }> {
  await Bun.sleep(warmupSeconds * 1000);
  const cpuStart = process.cpuUsage();
  const startedAt = performance.now();
  onWindow(true);
  await Bun.sleep(seconds * 1000);
  onWindow(false);
  const elapsed = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return { elapsed, cpuCores: (cpu.user + cpu.system) / 1e6 / elapsed };
}

/**
 * The bench's progress line: each line a part reports carries the time
 * spent and an estimate of the time left, from what each part planned
 * (its runs × their seconds, plus set-up). On a terminal a status line
 * refreshes every second between reports; in a log, a line every
 * `heartbeatMs` says the bench is still in its current step.
 */

export interface PlannedPart {
  name: string;
  /** What the part expects to take, set-up included (s). */
  seconds: number;
}

export interface BenchProgress {
  /** Starts a part: the estimate then counts from its plan. */
  part(name: string): void;
  /** One line of a part's progress (the `progress` callback every part takes). */
  report(line: string): void;
  stop(): void;
}

const clock = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
};

export function createBenchProgress(
  plan: readonly PlannedPart[],
  options: {
    write?: (text: string) => void;
    terminal?: boolean;
    heartbeatMs?: number;
    now?: () => number;
  } = {},
): BenchProgress {
  const {
    write = (text) => process.stderr.write(text),
    terminal = process.stderr.isTTY === true,
    heartbeatMs = 30_000,
    now = Date.now,
  } = options;
  const started = now();
  let index = -1;
  let partStarted = started;
  let lastLine = "";
  let lastWrite = started;
  let statusShown = false;

  /** The current part's plan left (at least a little: a part that overruns is not done) plus every later part's. */
  const remainingMs = () => {
    const at = now();
    const current = plan[index];
    const inPart = current ? Math.max(current.seconds * 1000 - (at - partStarted), 5_000) : 0;
    const later = plan.slice(index + 1).reduce((sum, p) => sum + p.seconds * 1000, 0);
    return inPart + later;
  };
  const prefix = () => `[bench ${clock(now() - started)} elapsed, ~${clock(remainingMs())} left]`;
  const clearStatus = () => {
    if (statusShown) write("\r\x1b[2K");
    statusShown = false;
  };
  const timer = setInterval(() => {
    if (terminal) {
      write(`\r\x1b[2K${prefix()} ${lastLine}`);
      statusShown = true;
    } else if (now() - lastWrite >= heartbeatMs && lastLine) {
      write(`${prefix()} still: ${lastLine}\n`);
      lastWrite = now();
    }
  }, 1_000);
  timer.unref();

  return {
    part(name) {
      const found = plan.findIndex((p, i) => i > index && p.name === name);
      index = found < 0 ? index : found;
      partStarted = now();
    },
    report(line) {
      clearStatus();
      lastLine = line.trim();
      lastWrite = now();
      write(`${prefix()} ${line}\n`);
    },
    stop() {
      clearInterval(timer);
      clearStatus();
    },
  };
}

import pino from "pino";

/** What one access line says about a request. */
export interface AccessFields {
  requestId: string;
  method: string;
  /** The path only, never the query (it may hold a token). */
  path: string;
  status: number;
  /** The error code of a 4xx/5xx answer. */
  code?: string | undefined;
  ms: number;
}

export interface AccessLog {
  /** Queues one line; it is written with the others of this event-loop turn. */
  write(fields: AccessFields): void;
  /** Writes every queued line now (the drain, and the process's exit). */
  flush(): void;
}

/** Past this many queued bytes the lines are written at once, whatever the turn. */
const MAX_QUEUED_CHARS = 64 * 1024;

/**
 * The gateway's access lines, in the root logger's JSON shape (`level` 30,
 * `time`, `tier`, `pid`, the fields, `msg` "request"), built by hand and
 * written in batches: the lines of one event-loop turn go out in one
 * write, after it (a generic logger line cost 13-16 µs of a 90 µs status
 * read, one write(2) each; bench/RESULTS.md). Lines keep the order their
 * requests were answered in; against the other log lines (written at
 * once) an access line may come after lines logged later in the same turn.
 * What a crash can lose: the lines of the turn it happens in (at most
 * 64 KiB); a drain or a process exit writes them first.
 */
export function createAccessLog(options: {
  tier: string;
  /** Takes whole lines, newline-terminated; must write them before returning. */
  write: (chunk: string) => void;
}): AccessLog {
  const { write } = options;
  const prefix = `{"level":30,"time":`;
  const base = `,"tier":${JSON.stringify(options.tier)},"pid":${process.pid},"requestId":`;
  let queued = "";
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    if (queued.length === 0) return;
    const chunk = queued;
    queued = "";
    write(chunk);
  }

  return {
    write(fields) {
      const code = fields.code === undefined ? "" : `,"code":${JSON.stringify(fields.code)}`;
      queued += `${prefix}${Date.now()}${base}${JSON.stringify(fields.requestId)},"method":${JSON.stringify(fields.method)},"path":${JSON.stringify(fields.path)},"status":${fields.status}${code},"ms":${Math.round(fields.ms * 100) / 100},"msg":"request"}\n`;
      if (queued.length >= MAX_QUEUED_CHARS) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** Writes to the process's stdout synchronously (the root logger's stream), whole chunks, retrying a full pipe. */
export function stdoutWriter(): (chunk: string) => void {
  const destination = pino.destination({ dest: 1, sync: true });
  return (chunk) => {
    destination.write(chunk);
  };
}

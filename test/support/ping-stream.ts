import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { GeoPing } from "../../proto/gen/delivery/tracking/v1/geo_pb";
import {
  type LocationIngestService,
  type StreamPingsRequest,
  StreamPingsRequestSchema,
  type StreamPingsResponse,
} from "../../proto/gen/delivery/tracking/v1/ingest_pb";

/** A StreamPings call driven step by step: send a ping, await the next response. */
export interface PingStream {
  send(ping: GeoPing): void;
  /** The next response, or a rejection with the call's error; times out after `timeoutMs`. */
  next(timeoutMs?: number): Promise<StreamPingsResponse>;
  /** Half-closes the request side; resolves when the server ends the call (rejects on error). */
  finish(): Promise<void>;
  /** Resolves once the server has ended the call, with its error if any. */
  readonly ended: Promise<unknown>;
  cancel(): void;
}

export function openPingStream(
  client: Client<typeof LocationIngestService>,
  token: string,
): PingStream {
  const outgoing: StreamPingsRequest[] = [];
  let wakeSender: (() => void) | undefined;
  let requestsDone = false;
  const controller = new AbortController();

  async function* requests(): AsyncGenerator<StreamPingsRequest> {
    for (;;) {
      const item = outgoing.shift();
      if (item) {
        yield item;
        continue;
      }
      if (requestsDone) return;
      await new Promise<void>((resolve) => {
        wakeSender = resolve;
      });
    }
  }

  const received: StreamPingsResponse[] = [];
  const waiters: (() => void)[] = [];
  let error: unknown;
  let done = false;
  const responses = client.streamPings(requests(), {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const ended = (async () => {
    try {
      for await (const response of responses) {
        received.push(response);
        for (const wake of waiters.splice(0)) wake();
      }
    } catch (caught) {
      error = caught;
    } finally {
      done = true;
      for (const wake of waiters.splice(0)) wake();
    }
    return error;
  })();

  return {
    send(ping) {
      outgoing.push(create(StreamPingsRequestSchema, { ping }));
      wakeSender?.();
    },
    async next(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const response = received.shift();
        if (response) return response;
        if (done) throw error ?? new Error("stream ended without another response");
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error("no response within the deadline");
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    async finish() {
      requestsDone = true;
      wakeSender?.();
      const failure = await ended;
      if (failure) throw failure;
    },
    ended,
    cancel() {
      requestsDone = true;
      wakeSender?.();
      controller.abort();
    },
  };
}

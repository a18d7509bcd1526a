import type * as grpc from "@grpc/grpc-js";
import { bearerMetadata, createStockIngestClient } from "./stock-grpc-client";

interface StockResponse {
  ack?: { lastAcceptedSeq: string; dropped: { seq: string; reason: string }[] };
  event?: string;
}

/** A rider app on the stock @grpc/grpc-js runtime: one StreamPings on its own connection. */
export interface StockRider {
  /** Sends the next ping and resolves with the ms until its ack (rejects on a stream error). */
  ping(timeoutMs?: number): Promise<number>;
  /** Resolves with the call's error when it fails (never for a clean end). */
  readonly failed: Promise<grpc.ServiceError>;
  close(): void;
}

let opened = 0;

export function openStockRider(
  address: string,
  token: string,
  credentials?: grpc.ChannelCredentials,
  options: grpc.ChannelOptions = {},
): StockRider {
  // A local subchannel pool: this rider's own TCP connection, as on a phone.
  const client = createStockIngestClient(
    address,
    { "grpc.use_local_subchannel_pool": 1, ...options },
    credentials,
  );
  const call = (
    client.StreamPings as (m: grpc.Metadata) => grpc.ClientDuplexStream<unknown, StockResponse>
  )(bearerMetadata(token));
  const waiting: ((response: StockResponse) => void)[] = [];
  let failure: grpc.ServiceError | undefined;
  const failed = new Promise<grpc.ServiceError>((resolve) => {
    call.on("error", (error: grpc.ServiceError) => {
      failure = error;
      resolve(error);
    });
  });
  call.on("data", (response: StockResponse) => {
    if (response.ack) waiting.shift()?.(response);
  });
  // Above anything an earlier stream of the same rider stored, so no ping is OUT_OF_ORDER.
  // (room for 1,000 pings per stream).
  let seq = (BigInt(Date.now()) * 1_000n + BigInt(opened++ % 1_000)) * 1_000n;
  return {
    async ping(timeoutMs = 5_000) {
      if (failure) throw failure;
      seq += 1n;
      const sentAt = performance.now();
      const acked = new Promise<StockResponse>((resolve) => waiting.push(resolve));
      call.write({
        ping: {
          // Parked: pings may follow each other within milliseconds without being teleports.
          lat: 51.5,
          lng: -0.12,
          accuracyM: 5,
          recordedAtMs: String(Date.now()),
          seq: String(seq),
        },
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        acked,
        failed,
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (outcome === "timeout") throw new Error(`no ack for ping ${seq} within ${timeoutMs} ms`);
      if (!("ack" in outcome) || outcome.ack === undefined) throw outcome;
      if (outcome.ack.dropped.length > 0) {
        throw new Error(`ping ${seq} dropped: ${JSON.stringify(outcome.ack.dropped)}`);
      }
      return performance.now() - sentAt;
    },
    failed,
    close() {
      call.cancel();
      client.close();
    },
  };
}

import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";

/** A live ping message is tiny; anything near this is not a ping. */
export const PING_MESSAGE_MAX_BYTES = 4 * 1024;
/** One upload message may batch many pings (~40 bytes each). */
export const UPLOAD_MESSAGE_MAX_BYTES = 1024 * 1024;

const { streamPings, uploadPings, sendPing } = LocationIngestService.method;

/** The largest request message each method takes, by method name. */
export const MESSAGE_MAX_BYTES: Readonly<Record<string, number>> = {
  [streamPings.name]: PING_MESSAGE_MAX_BYTES,
  [uploadPings.name]: UPLOAD_MESSAGE_MAX_BYTES,
  [sendPing.name]: PING_MESSAGE_MAX_BYTES,
};

/**
 * Registers the service with per-method message limits, enforced by Connect
 * where the bytes are read (an oversized message ends its call with
 * ResourceExhausted); the transport's message guard checks the same limits
 * first, from the length prefix.
 */
export function registerIngestRoutes(
  router: ConnectRouter,
  service: ServiceImpl<typeof LocationIngestService>,
): void {
  router.rpc(streamPings, service.streamPings, { readMaxBytes: PING_MESSAGE_MAX_BYTES });
  router.rpc(uploadPings, service.uploadPings, { readMaxBytes: UPLOAD_MESSAGE_MAX_BYTES });
  router.rpc(sendPing, service.sendPing, { readMaxBytes: PING_MESSAGE_MAX_BYTES });
}

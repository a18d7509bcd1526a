import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { LocationIngestService } from "../proto/gen/delivery/tracking/v1/ingest_pb";

/** A live ping message is tiny; anything near this is not a ping. */
export const PING_MESSAGE_MAX_BYTES = 4 * 1024;
/** One upload message may batch many pings (~40 bytes each). */
const UPLOAD_MESSAGE_MAX_BYTES = 1024 * 1024;

/**
 * Registers the service with per-method message limits, enforced by Connect
 * where the bytes are read (an oversized message ends its call with
 * ResourceExhausted).
 */
export function registerIngestRoutes(
  router: ConnectRouter,
  service: ServiceImpl<typeof LocationIngestService>,
): void {
  const { streamPings, uploadPings, sendPing } = LocationIngestService.method;
  router.rpc(streamPings, service.streamPings, { readMaxBytes: PING_MESSAGE_MAX_BYTES });
  router.rpc(uploadPings, service.uploadPings, { readMaxBytes: UPLOAD_MESSAGE_MAX_BYTES });
  router.rpc(sendPing, service.sendPing, { readMaxBytes: PING_MESSAGE_MAX_BYTES });
}

import { ErrorCode, SUPPORTED_APIS } from "./protocol";
import { KafkaWriter } from "./wire";

/**
 * ApiVersions v0-v2 response body. v1 and v2 add throttle_time_ms; v2 only
 * changes when a broker throttles, which this one never does.
 */
export function writeApiVersions(version: number): KafkaWriter {
  const body = new KafkaWriter()
    .int16(ErrorCode.none)
    .array(SUPPORTED_APIS, (w, api) => w.int16(api.key).int16(api.min).int16(api.max));
  if (version >= 1) body.int32(0);
  return body;
}

/**
 * A client asking for a newer ApiVersions than we speak gets UNSUPPORTED_VERSION
 * in the v0 layout (which every client can read) plus the list, so it can
 * retry with a version we do support, as real brokers do.
 */
export function writeApiVersionsUnsupported(): KafkaWriter {
  return new KafkaWriter()
    .int16(ErrorCode.unsupportedVersion)
    .array(SUPPORTED_APIS, (w, api) => w.int16(api.key).int16(api.min).int16(api.max));
}

import { writeApiVersions, writeApiVersionsUnsupported } from "./api-versions";
import { type BrokerAddress, handleMetadata } from "./metadata";
import { handleProduce } from "./produce";
import { ApiKey, parseRequestHeader, supports } from "./protocol";
import type { TopicLog } from "./topic-log";
import { KafkaReader, type KafkaWriter } from "./wire";

export interface BrokerContext {
  readonly log: TopicLog;
  /** Read per request: the port is only known once the listener is up. */
  address(): BrokerAddress;
  failProduce?: () => boolean;
  /** A request the fixture had to refuse or could not decode. */
  onProtocolError(error: Error): void;
}

/**
 * Answers one request frame (without its size prefix) with a complete
 * response frame, or null when none is due (Produce with acks=0). Throws for
 * an api key or version the fixture does not speak, so the caller hangs up.
 */
export function answerRequest(frame: Buffer, context: BrokerContext): Buffer | null {
  const request = new KafkaReader(frame);
  const header = parseRequestHeader(request);
  const body = route(header.apiKey, header.apiVersion, request, context);
  if (!body) return null;
  const payload = body.build();
  // Response header v0 (correlation id only): no flexible version is advertised.
  const prefix = Buffer.alloc(8);
  prefix.writeInt32BE(4 + payload.length, 0);
  prefix.writeInt32BE(header.correlationId, 4);
  return Buffer.concat([prefix, payload]);
}

function route(
  apiKey: number,
  version: number,
  request: KafkaReader,
  context: BrokerContext,
): KafkaWriter | null {
  if (apiKey === ApiKey.apiVersions && !supports(apiKey, version)) {
    return writeApiVersionsUnsupported();
  }
  if (!supports(apiKey, version)) {
    throw new Error(`kafka fixture: api key ${apiKey} v${version} is not supported`);
  }
  switch (apiKey) {
    case ApiKey.apiVersions:
      return writeApiVersions(version);
    case ApiKey.metadata:
      return handleMetadata(request, version, context.log, context.address());
    case ApiKey.produce:
      return handleProduce(request, version, context.log, {
        failProduce: context.failProduce,
        onCorrupt: context.onProtocolError,
      });
    default:
      throw new Error(`kafka fixture: api key ${apiKey} has no handler`);
  }
}

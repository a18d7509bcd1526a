import { ErrorCode } from "./protocol";
import type { TopicLog } from "./topic-log";
import { type KafkaReader, KafkaWriter } from "./wire";

/** Where the one broker of this cluster listens; it is node 0 and the controller. */
export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

const NODE_ID = 0;
const CLUSTER_ID = "kafka-fixture";

/**
 * Metadata v0-v6. Requested topics that do not exist are created (as with
 * auto.create.topics.enable) unless a v4+ request turns that off, in which
 * case they come back as UNKNOWN_TOPIC_OR_PARTITION like on a real broker.
 */
export function handleMetadata(
  request: KafkaReader,
  version: number,
  log: TopicLog,
  broker: BrokerAddress,
): KafkaWriter {
  // v0 has no null array: an empty list means "all topics". From v1 null does,
  // and an empty list means none (kafkajs sends [] before it targets a topic).
  const requested = request.array((r) => r.string());
  const allowCreate = version >= 4 ? request.boolean() : true;
  const listAll = requested === null || (version === 0 && requested.length === 0);
  const topics = listAll ? log.topicNames() : (requested ?? []);
  if (allowCreate) for (const topic of topics) log.createTopic(topic);

  const body = new KafkaWriter();
  if (version >= 3) body.int32(0); // throttle_time_ms
  body.array([NODE_ID], (w, nodeId) => {
    w.int32(nodeId).string(broker.host).int32(broker.port);
    if (version >= 1) w.string(null); // rack
  });
  if (version >= 2) body.string(CLUSTER_ID);
  if (version >= 1) body.int32(NODE_ID); // controller_id
  return body.array(topics, (w, topic) => writeTopic(w, topic, version, log));
}

function writeTopic(w: KafkaWriter, topic: string, version: number, log: TopicLog): void {
  const exists = log.hasTopic(topic);
  w.int16(exists ? ErrorCode.none : ErrorCode.unknownTopicOrPartition).string(topic);
  if (version >= 1) w.boolean(false); // is_internal
  const partitions = exists ? Array.from({ length: log.partitions }, (_, i) => i) : [];
  w.array(partitions, (pw, partition) => {
    pw.int16(ErrorCode.none).int32(partition).int32(NODE_ID);
    pw.array([NODE_ID], (x, id) => x.int32(id)); // replicas
    pw.array([NODE_ID], (x, id) => x.int32(id)); // isr
    if (version >= 5) pw.array([], (x, id: number) => x.int32(id)); // offline_replicas
  });
}

import { create, type DescMessage, type MessageShape, ScalarType } from "@bufbuild/protobuf";

/** A fixed-seed generator: the same values every run. */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/**
 * A message of `schema` with every field set to a random value that is not
 * its default, recursively: what tests of hand-written encoders compare
 * against, so a field added to the proto and missed by an encoder fails
 * them. 64-bit integer fields whose name ends in `Ms` hold safe integers
 * (times, as the edge carries them); the others span their whole range.
 * Kinds the edge's messages do not use (lists, maps, bytes) throw, so a
 * test meeting one is extended rather than silently skipping the field.
 */
export function randomMessage<Desc extends DescMessage>(
  schema: Desc,
  random: () => number,
): MessageShape<Desc> {
  const init: Record<string, unknown> = {};
  for (const field of schema.fields) {
    if (field.oneof) throw new Error(`${field.name}: oneof fields are not generated`);
    switch (field.fieldKind) {
      case "scalar":
        init[field.localName] = randomScalar(field.scalar, field.localName, random);
        break;
      case "enum": {
        const values = field.enum.values.filter((value) => value.number !== 0);
        init[field.localName] = values[Math.floor(random() * values.length)]?.number;
        break;
      }
      case "message":
        init[field.localName] = randomMessage(field.message, random);
        break;
      default:
        throw new Error(`${field.name}: ${field.fieldKind} fields are not generated`);
    }
  }
  return create(schema, init as never);
}

function randomScalar(type: ScalarType, name: string, random: () => number): unknown {
  const nonZero = (value: number) => value || 1;
  switch (type) {
    case ScalarType.DOUBLE:
      return nonZero((random() - 0.5) * 360);
    case ScalarType.FLOAT:
      return nonZero(Math.fround((random() - 0.5) * 720));
    case ScalarType.INT64:
    case ScalarType.UINT64: {
      if (name.endsWith("Ms")) return BigInt(1 + Math.floor(random() * 2 ** 52));
      const high = BigInt(Math.floor(random() * 2 ** 31));
      const value = (high << 32n) | BigInt(Math.floor(random() * 2 ** 32));
      return (type === ScalarType.UINT64 ? value * 2n : value) || 1n;
    }
    case ScalarType.INT32:
    case ScalarType.UINT32:
      return 1 + Math.floor(random() * 2 ** 30);
    case ScalarType.BOOL:
      return true;
    case ScalarType.STRING:
      return `s-${Math.floor(random() * 1e9).toString(36)}`;
    default:
      throw new Error(`${name}: scalar type ${ScalarType[type]} is not generated`);
  }
}

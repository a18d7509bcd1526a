import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * A LocationIngestService client built the way a third party would: the
 * stock @grpc/grpc-js runtime reading the .proto files, none of our
 * generated code.
 */
export function createStockIngestClient(
  address: string,
  options: grpc.ChannelOptions = {},
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
) {
  const definition = protoLoader.loadSync("delivery/tracking/v1/ingest.proto", {
    includeDirs: [join(import.meta.dir, "..", "..", "proto")],
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    delivery: { tracking: { v1: { LocationIngestService: grpc.ServiceClientConstructor } } };
  };
  const Service = loaded.delivery.tracking.v1.LocationIngestService;
  return new Service(address, credentials, options);
}

export function bearerMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

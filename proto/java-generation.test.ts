import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  GeofenceEvent_Fence,
  TrackingEventSchema,
} from "./gen/delivery/tracking/v1/tracking_event_pb";

// Debian's jars (scripts/setup.sh installs them): the full and lite runtimes
// share protobuf.jar; grpc-java 1.41 stubs also need guava and javax.annotation.
const JARS = "/usr/share/java";
const common = ["protobuf", "grpc-api", "grpc-stub", "guava", "geronimo-annotation-1.3-spec"];
const classpath = (grpcProtobuf: string) =>
  [...common, grpcProtobuf].map((jar) => `${JARS}/${jar}.jar`).join(":");
const needed = [
  "/usr/bin/protoc",
  "/usr/bin/grpc_java_plugin",
  ...[...common, "grpc-protobuf", "grpc-protobuf-lite"].map((jar) => `${JARS}/${jar}.jar`),
];
const javac = Bun.which("javac");
const missing = [...needed.filter((path) => !existsSync(path)), ...(javac ? [] : ["javac"])];
const root = join(import.meta.dir, "..");

async function run(command: string[]): Promise<string> {
  const child = Bun.spawn(command, { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (code !== 0) throw new Error(`${command.join(" ")} exited ${code}:\n${stderr}`);
  return stdout;
}

function javaFiles(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".java"))
    .map((name) => join(folder, name));
}

test.skipIf(missing.length > 0)(
  `./edge proto:java generates Java that compiles offline (full and lite) and agrees with the TypeScript on the wire${missing.length > 0 ? ` (skipped: ${missing.join(", ")} missing; scripts/setup.sh installs them)` : ""}`,
  async () => {
    const work = mkdtempSync(join(tmpdir(), "java-gen-"));
    const [full, lite] = [join(work, "full"), join(work, "lite")];
    await Promise.all([
      run(["bash", "scripts/generate-java.sh", full, "--kotlin"]),
      run(["bash", "scripts/generate-java.sh", lite, "--lite"]),
    ]);
    const generated = join(full, "com", "deliveryedge", "tracking", "v1");
    // java_package, java_multiple_files and java_outer_classname as proto/README.md says.
    for (const name of ["TrackingEvent.java", "GeoPing.java", "TrackingEventProto.java"])
      expect(existsSync(join(generated, name))).toBe(true);
    expect(existsSync(join(generated, "LocationIngestServiceGrpc.java"))).toBe(true);
    // The Kotlin DSL is generated; compiling it needs protobuf-kotlin, which Debian lacks.
    expect(readFileSync(join(generated, "TrackingEventKt.kt"), "utf8")).toContain(
      "package com.deliveryedge.tracking.v1",
    );

    const [fullClasses, liteClasses] = [join(work, "full-classes"), join(work, "lite-classes")];
    const program = join(root, "test", "support", "java", "TrackingEventRoundTrip.java");
    await Promise.all([
      run([
        javac ?? "javac",
        "-d",
        fullClasses,
        "-cp",
        classpath("grpc-protobuf"),
        ...javaFiles(full),
        program,
      ]),
      run([
        javac ?? "javac",
        "-d",
        liteClasses,
        "-cp",
        classpath("grpc-protobuf-lite"),
        ...javaFiles(lite),
      ]),
    ]);
    expect(
      existsSync(join(liteClasses, "com", "deliveryedge", "tracking", "v1", "TrackingEvent.class")),
    ).toBe(true);

    // Java encodes, TypeScript decodes.
    const java = (...args: string[]) =>
      run([
        "java",
        "-cp",
        `${fullClasses}:${classpath("grpc-protobuf")}`,
        "TrackingEventRoundTrip",
        ...args,
      ]);
    const [bytes, serviceName] = (await java()).trim().split("\n");
    expect(serviceName).toBe("delivery.tracking.v1.LocationIngestService");
    const decoded = fromBinary(TrackingEventSchema, Buffer.from(bytes ?? "", "base64"));
    expect(decoded.orderId).toBe("o-java");
    expect(decoded.event.case).toBe("geofence");
    expect(decoded.event.value).toMatchObject({
      fence: GeofenceEvent_Fence.LEFT_PICKUP,
      riderId: "r-java",
      atMs: 1_700_000_000_123n,
    });

    // TypeScript encodes, Java decodes.
    const event = create(TrackingEventSchema, {
      orderId: "o-ts",
      event: {
        case: "position",
        value: { riderId: "r-ts", lat: 51.5074, lng: -0.1278, seq: 9_007_199_254_740_993n },
      },
    });
    const line = await java(Buffer.from(toBinary(TrackingEventSchema, event)).toString("base64"));
    expect(line.trim()).toBe("o-ts POSITION r-ts 51.5074 -0.1278 9007199254740993");
  },
  // protoc, javac and java take about 16 s of CPU: 40 s alone here, past 60 s with four
  // lanes' suites sharing the 2 cores (load average 12).
  180_000,
);

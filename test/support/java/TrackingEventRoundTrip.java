// Compiled by proto/java-generation.test.ts against the Java that
// scripts/generate-java.sh generates: builds events with the generated
// classes and prints their bytes (base64), and decodes bytes the TypeScript
// side encoded, so both runtimes are checked to agree on the wire.
import com.deliveryedge.tracking.v1.GeofenceEvent;
import com.deliveryedge.tracking.v1.LocationIngestServiceGrpc;
import com.deliveryedge.tracking.v1.PositionEvent;
import com.deliveryedge.tracking.v1.TrackingEvent;
import java.util.Base64;

public final class TrackingEventRoundTrip {
  public static void main(String[] args) throws Exception {
    if (args.length == 1) {
      TrackingEvent event = TrackingEvent.parseFrom(Base64.getDecoder().decode(args[0]));
      PositionEvent position = event.getPosition();
      System.out.println(
          String.join(
              " ",
              event.getOrderId(),
              event.getEventCase().name(),
              position.getRiderId(),
              Double.toString(position.getLat()),
              Double.toString(position.getLng()),
              Long.toString(position.getSeq())));
      return;
    }
    TrackingEvent geofence =
        TrackingEvent.newBuilder()
            .setOrderId("o-java")
            .setGeofence(
                GeofenceEvent.newBuilder()
                    .setFence(GeofenceEvent.Fence.FENCE_LEFT_PICKUP)
                    .setRiderId("r-java")
                    .setAtMs(1_700_000_000_123L))
            .build();
    System.out.println(Base64.getEncoder().encodeToString(geofence.toByteArray()));
    // The stub's service name is the one the ingest serves.
    System.out.println(LocationIngestServiceGrpc.SERVICE_NAME);
  }
}

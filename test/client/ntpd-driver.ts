// Runs the client shell (NtpClient) in compressed time against one server and prints, one JSON line each,
// the virtual time and every event, until `count` exchanges have ended. Started by ntpd.test.ts inside the
// network namespace where NTPsec's ntpd listens on port 123 (the test process itself cannot enter it).
//
// usage: node test/client/ntpd-driver.ts HOST PORT COUNT [BURST]

import { NtpClient } from "../../src/client/client.ts";
import { fastClock } from "./fast-clock.ts";

const [host = "127.0.0.1", port = "123", count = "6", burst = "0"] = process.argv.slice(2);
const clock = fastClock();
let exchanges = 0;
const client = new NtpClient({
  servers: [{ host, port: Number(port) }],
  burst: Number(burst),
  startSpread: 1,
  clock,
  onEvent: (event) => {
    process.stdout.write(`${JSON.stringify({ atS: clock.virtual, event })}\n`);
    if (["sample", "no-reply", "unusable", "kiss"].includes(event.kind) && ++exchanges >= Number(count)) {
      client.stop();
    }
  },
  onWarning: (m) => process.stderr.write(`${m}\n`),
});
client.start();

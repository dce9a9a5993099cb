// Multicast for the tests, never on the machine's interfaces: a private network namespace (the port-123
// sandbox of peers.ts) whose loopback carries multicast, with 224.0.0.0/4 routed to it there only.

import { findTool, openPort123Sandbox, type PortSandbox, run } from "./peers.ts";

/** A namespace with lo up, multicast on it, and 224/4 routed to it. */
export async function multicastSandbox(): Promise<PortSandbox> {
  const sandbox = await openPort123Sandbox("netns");
  const ip = findTool("ip");
  for (const argv of [
    [ip, "link", "set", "lo", "multicast", "on"],
    [ip, "route", "add", "224.0.0.0/4", "dev", "lo"],
  ]) {
    const r = await run(sandbox.wrap(argv), 5000);
    if (r.code !== 0) {
      await sandbox.close();
      throw new Error(`${argv.join(" ")}: ${r.output}`);
    }
  }
  return sandbox;
}

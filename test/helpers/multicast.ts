// Multicast for the tests, never on the machine's interfaces: a private network namespace (the port-123
// sandbox of peers.ts) whose loopback carries multicast, with 224.0.0.0/4 routed to it there only.

import { findTool, openPort123Sandbox, type PortSandbox, run, waitFor } from "./peers.ts";

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

/**
 * A namespace with a veth pair whose two ends are both in it (two interfaces on one wire): mcT0 with
 * 192.0.2.1/24 and 2001:db8::1/64, mcT1 with 192.0.2.2/24. For what loopback does not carry: IPv6 multicast
 * and IPv4 subnet broadcast.
 */
export async function vethSandbox(): Promise<PortSandbox> {
  const sandbox = await openPort123Sandbox("netns");
  const ip = findTool("ip");
  try {
    for (const argv of [
      [ip, "link", "add", "mcT0", "type", "veth", "peer", "name", "mcT1"],
      [ip, "addr", "add", "192.0.2.1/24", "dev", "mcT0"],
      [ip, "-6", "addr", "add", "2001:db8::1/64", "dev", "mcT0", "nodad"],
      [ip, "addr", "add", "192.0.2.2/24", "dev", "mcT1"],
      [ip, "link", "set", "mcT0", "up"],
      [ip, "link", "set", "mcT1", "up"],
    ]) {
      const r = await run(sandbox.wrap(argv), 5000);
      if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.output}`);
    }
    // The carrier comes up a moment after `link set up`, and IPv6 link-local addresses after it.
    await waitFor(
      "mcT1's IPv6 link-local address",
      async () => {
        const r = await run(
          sandbox.wrap([ip, "-6", "-o", "addr", "show", "dev", "mcT1", "scope", "link"]),
          5000,
        );
        return r.stdout.includes("fe80") && !r.stdout.includes("tentative") ? true : undefined;
      },
      10_000,
      100,
    );
  } catch (err) {
    await sandbox.close();
    throw err;
  }
  return sandbox;
}

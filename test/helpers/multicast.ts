// Multicast for the tests, never on the machine's interfaces: a private network namespace (the port-123
// sandbox of peers.ts) whose loopback carries multicast, with 224.0.0.0/4 routed to it there only; and
// running `ntpshield` and reading its JSON events in there.

import { findTool, openPort123Sandbox, type PortSandbox, REPO_ROOT, run, waitFor } from "./peers.ts";

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

/** The argv of `ntpshield ARGS...` run from this checkout's sources. */
export function ntpshieldArgv(args: readonly string[]): string[] {
  return [process.execPath, `${REPO_ROOT}/src/cli/main.ts`, ...args];
}

/** `ntpshield ARGS...` inside the sandbox, where the group and the servers are. */
export function ntpshieldIn(sandbox: PortSandbox, args: readonly string[], timeoutMs: number) {
  return run(sandbox.wrap(ntpshieldArgv(args)), timeoutMs);
}

/** GET `url` inside the sandbox (the servers' HTTP addresses are only there); the body is on stdout. */
export function fetchIn(sandbox: PortSandbox, url: string) {
  const code = "const r = await fetch(process.argv[1]); console.log(await r.text());";
  return run(sandbox.wrap([process.execPath, "--input-type=module", "-e", code, url]), 5000);
}

/** The events of `sync --json`, one JSON object a line. */
export function jsonEvents(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The samples among `sync --broadcast --json`'s events, in order. */
export function samplesOf(events: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return events.filter((e) => e["kind"] === "sample").map((e) => e["sample"] as Record<string, unknown>);
}

/** The completed calibrations (a unicast exchange and the broadcast delay it gave) among those events. */
export function calibrationsOf(events: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return events.filter((e) => e["kind"] === "calibrated" && e["delayMs"] !== undefined);
}

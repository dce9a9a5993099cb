// The IPv4 multicast BCP's rules (src/config/multicast.ts), each with the BCP's own addresses, and as
// `ntpshield check-config` reports them: errors refuse the file (exit 2), warnings leave it valid.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ConfigError, parseConfig } from "../../src/config/index.ts";
import {
  crossesBorder,
  groupFindings,
  isPrivateIPv4,
  type MulticastFinding,
  multicastFindings,
  RESERVED_GROUPS,
} from "../../src/config/multicast.ts";
import { REPO_ROOT } from "../helpers/peers.ts";

function rules(f: readonly MulticastFinding[]): string[] {
  return f.map((x) => `${x.severity}:${x.rule}`);
}

function broadcastTo(address: string, ttl: number, iface = "", kind = "multicast") {
  return multicastFindings({
    broadcast: { destination: [{ address, kind, ttl, interface: iface }] },
    manycast: { group: [], interface: "" },
  });
}

describe("BCP: a group is in 224/4 (Introduction and Terminology)", () => {
  test("224.0.1.1 (NTP's) and 239.255.0.1 are groups; 192.0.2.1 and 240.0.0.1 are not", () => {
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 1)), []);
    assert.deepEqual(rules(broadcastTo("192.0.2.1", 1)), ["error:not-a-group"]);
    assert.deepEqual(rules(broadcastTo("240.0.0.1", 1)), ["error:not-a-group"]);
    const [f] = broadcastTo("192.0.2.1", 1);
    assert.equal(f!.key, "broadcast.destination[0].address");
    assert.match(f!.reason, /224\/4.*Introduction and Terminology/);
  });

  test("IPv6: ff02::101 and ff05::101 are groups, 2001:db8::1 is not", () => {
    assert.deepEqual(rules(broadcastTo("ff02::101", 1)), []);
    assert.deepEqual(rules(broadcastTo("ff05::101", 8)), []);
    assert.deepEqual(rules(broadcastTo("2001:db8::1", 1)), ["error:not-a-group"]);
  });

  test("a subnet broadcast destination must not be a group", () => {
    assert.deepEqual(rules(broadcastTo("192.0.2.255", 1, "", "broadcast")), []);
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 1, "", "broadcast")), ["error:broadcast-not-group"]);
    assert.deepEqual(rules(broadcastTo("ff02::101", 1, "", "broadcast")), ["error:broadcast-not-group"]);
  });
});

describe("BCP: groups filtered between domains are refused (Model MSDP Configuration; PIM-SM Configuration)", () => {
  test("224.0.1.39 and 224.0.1.40 (Cisco's RP announcement and discovery)", () => {
    for (const g of ["224.0.1.39", "224.0.1.40"]) {
      const f = broadcastTo(g, 1);
      assert.deepEqual(rules(f), ["error:reserved-group"]);
      assert.match(f[0]!.reason, /Cisco's Rendezvous Point/);
      assert.match(f[0]!.reason, /Model MSDP Configuration/);
      assert.match(f[0]!.reason, /Inter-domain PIM Sparse Mode/);
    }
  });

  test("every other single group the BCP lists", () => {
    const listed = [
      "224.0.1.2",
      "224.0.1.3",
      "224.0.1.22",
      "224.0.1.24",
      "224.0.1.35",
      "224.0.1.60",
      "224.0.2.2",
      "229.55.150.208",
    ];
    for (const g of listed) {
      assert.ok(RESERVED_GROUPS.has(g), g);
      assert.deepEqual(rules(broadcastTo(g, 1)), ["error:reserved-group"], g);
    }
    assert.equal(RESERVED_GROUPS.size, listed.length + 2);
    // Its neighbours are not refused.
    assert.deepEqual(rules(broadcastTo("224.0.1.41", 1)), []);
  });

  test("as manycast groups too", () => {
    const f = multicastFindings({
      broadcast: { destination: [] },
      manycast: { group: ["224.0.1.1", "224.0.1.40"], interface: "" },
    });
    assert.deepEqual(
      f.map((x) => [x.key, x.rule]),
      [["manycast.group[1]", "reserved-group"]],
    );
  });
});

describe("BCP: 239/8 is administratively scoped (RFC 2365; PIM-SM Configuration)", () => {
  test("a TTL above the border threshold of 32 is warned of; 32 and under is not", () => {
    assert.deepEqual(rules(broadcastTo("239.255.0.1", 32)), []);
    const f = broadcastTo("239.255.0.1", 33);
    assert.deepEqual(rules(f), ["warning:admin-scope-ttl"]);
    assert.equal(f[0]!.key, "broadcast.destination[0].ttl");
    assert.match(f[0]!.reason, /leaves the organisation/);
    assert.deepEqual(rules(broadcastTo("239.0.0.0", 255)), ["warning:admin-scope-ttl"]);
  });
});

describe("BCP: 232/8 is source-specific (Source Specific Multicast)", () => {
  test("a broadcast to 232/8 needs the source address set, and then warns of IGMPv3", () => {
    const none = broadcastTo("232.1.1.1", 1);
    assert.deepEqual(rules(none), ["error:ssm-needs-source"]);
    assert.equal(none[0]!.key, "broadcast.destination[0].interface");
    const withSource = broadcastTo("232.1.1.1", 1, "192.0.2.10");
    assert.deepEqual(rules(withSource), ["warning:ssm-igmpv3"]);
    assert.match(withSource[0]!.reason, /\(192\.0\.2\.10,232\.1\.1\.1\).*IGMPv3/);
  });

  test("manycast (any source) in 232/8 is refused, with or without an interface", () => {
    for (const iface of ["", "192.0.2.10"]) {
      const f = multicastFindings({
        broadcast: { destination: [] },
        manycast: { group: ["232.0.1.1"], interface: iface },
      });
      assert.deepEqual(rules(f), ["error:ssm-any-source"]);
    }
  });

  test("a listening client names the source or is refused", () => {
    assert.deepEqual(rules(groupFindings({ key: "--broadcast", address: "232.1.1.1", use: "client" })), [
      "error:ssm-needs-source",
    ]);
    assert.deepEqual(
      rules(groupFindings({ key: "--broadcast", address: "232.1.1.1", source: "192.0.2.10", use: "client" })),
      ["warning:ssm-igmpv3"],
    );
  });
});

describe("BCP: the TTL threshold of 32 at a domain border (PIM-SM Configuration)", () => {
  test("a packet crosses a border of threshold 32 only above 32", () => {
    assert.equal(crossesBorder(32), false);
    assert.equal(crossesBorder(33), true);
  });

  test("16-32, the inter-institution barriers, is warned of for a global group; 15 and 33 are not", () => {
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 15)), []);
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 16)), ["warning:border-ttl"]);
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 32)), ["warning:border-ttl"]);
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 33)), []);
  });

  test("224.0.0/24 is never forwarded, so a TTL above 1 there is warned of", () => {
    assert.deepEqual(rules(broadcastTo("224.0.0.1", 1)), []);
    assert.deepEqual(rules(broadcastTo("224.0.0.1", 2)), ["warning:link-local-ttl"]);
  });
});

describe("BCP: sources with private addresses are not advertised between domains (Model MSDP Configuration)", () => {
  test("RFC 1918 ranges", () => {
    for (const a of ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1"])
      assert.ok(isPrivateIPv4(a), a);
    for (const a of ["172.32.0.1", "192.0.2.1", "11.0.0.1"]) assert.ok(!isPrivateIPv4(a), a);
  });

  test("a private source with a TTL that crosses the border is warned of; within the site it is not", () => {
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 8, "192.168.1.10")), []);
    const f = broadcastTo("224.0.1.1", 64, "192.168.1.10");
    assert.deepEqual(rules(f), ["warning:private-source"]);
    assert.equal(f[0]!.key, "broadcast.destination[0].interface");
    assert.match(f[0]!.reason, /RFC 1918/);
    assert.deepEqual(rules(broadcastTo("224.0.1.1", 64, "192.0.2.10")), []);
  });
});

describe("the configuration file", () => {
  test("an error refuses the file, naming the key", () => {
    assert.throws(
      () => parseConfig('[[broadcast.destination]]\naddress = "224.0.1.40"\n'),
      (e: unknown) =>
        e instanceof ConfigError && e.problems.some((p) => p.key === "broadcast.destination[0].address"),
    );
    assert.throws(
      () => parseConfig('[manycast]\ngroup = ["232.0.1.1"]\n'),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.key === "manycast.group[0]"),
    );
  });

  test("a warning does not", () => {
    const c = parseConfig('[[broadcast.destination]]\naddress = "239.1.2.3"\nttl = 64\n');
    assert.equal(c.broadcast.destination[0]!.ttl, 64);
    assert.equal(c.broadcast.interval, 64);
    assert.equal(c.broadcast.destination[0]!.port, 123);
  });

  test("an address that is not a literal is refused by its field", () => {
    assert.throws(
      () => parseConfig('[[broadcast.destination]]\naddress = "ntp.example"\n'),
      (e: unknown) =>
        e instanceof ConfigError && e.problems.some((p) => p.key === "broadcast.destination[0].address"),
    );
  });
});

describe("ntpshield check-config", () => {
  const dir = mkdtempSync(join(tmpdir(), "ntpshield-mcast-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const check = (text: string) => {
    const path = join(dir, "c.toml");
    writeFileSync(path, text);
    return spawnSync(process.execPath, ["src/cli/main.ts", "check-config", path], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 15_000,
    });
  };

  test("prints each warning with its key and the BCP's section, and exits 0", () => {
    const r = check(
      '[[broadcast.destination]]\naddress = "239.1.2.3"\nttl = 64\n' +
        '[[broadcast.destination]]\naddress = "224.0.1.1"\nttl = 64\ninterface = "10.1.2.3"\n',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /broadcast\.destination\[0\]\.ttl: warning: .*Inter-domain PIM Sparse Mode/);
    assert.match(r.stderr, /broadcast\.destination\[1\]\.interface: warning: .*RFC 1918.*Model MSDP/);
    assert.match(r.stdout, /valid .*2 warnings\)/);
  });

  test("refuses a reserved group and a manycast group in 232/8 with exit 2", () => {
    const r = check('[[broadcast.destination]]\naddress = "224.0.1.39"\n[manycast]\ngroup = ["232.0.1.1"]\n');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /broadcast\.destination\[0\]\.address: 224\.0\.1\.39 belongs to Cisco/);
    assert.match(r.stderr, /manycast\.group\[0\]: 232\.0\.1\.1 is in 232\/8, source-specific/);
  });
});

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { AEAD_AES_SIV_CMAC_256 } from "../../src/nts/aes-siv.ts";
import {
  COOKIE_BAD,
  COOKIE_LENGTH,
  COOKIE_OK,
  COOKIE_UNKNOWN_KEY,
  openCookie,
  sealCookie,
} from "../../src/nts/cookie.ts";
import { NtsError } from "../../src/nts/errors.ts";
import {
  activationMs,
  CookieKeys,
  formatKeyFile,
  newCookieKey,
  parseKeyFile,
  rotateCookieKeys,
} from "../../src/nts/keys.ts";

const random = (n: number) => new Uint8Array(randomBytes(n));
const session = () => ({ aead: AEAD_AES_SIV_CMAC_256, c2s: random(32), s2c: random(32) });
const DAY = 86_400_000;

describe("cookies (RFC 8915 §6)", () => {
  it("a sealed cookie opens to the session keys, is 104 octets and names its key", () => {
    const key = newCookieKey([], 0, random);
    const keys = new CookieKeys([key]);
    const s = session();
    const cookie = sealCookie(keys.current, s);
    assert.equal(cookie.length, COOKIE_LENGTH);
    assert.equal(COOKIE_LENGTH % 4, 0);
    assert.equal(Buffer.from(cookie.subarray(0, 4)).readUInt32BE(0), key.id);
    const opened = openCookie(keys, cookie);
    assert.equal(opened.status, COOKIE_OK);
    assert.deepEqual(opened.session, s);
  });

  it("any changed octet, a wrong length or an unknown key: the cookie does not open, and says why", () => {
    const keys = new CookieKeys([newCookieKey([], 0, random)]);
    const cookie = sealCookie(keys.current, session());
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: COOKIE_LENGTH - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, x) => {
          const t = new Uint8Array(cookie);
          t[at]! ^= x;
          assert.equal(openCookie(keys, t).status, COOKIE_BAD);
        },
      ),
    );
    assert.equal(openCookie(keys, cookie.subarray(0, 100)).status, COOKIE_BAD);
    const other = new CookieKeys([newCookieKey(keys.keys, 0, random)]);
    assert.equal(openCookie(other, cookie).status, COOKIE_UNKNOWN_KEY);
  });
});

describe("cookie keys: rotation and the fleet's key file", () => {
  const policy = { rotate: 86400, keep: 7 * 86400 };

  it("a new key after `rotate`; an old key opens cookies for `keep` after it was replaced, then goes", () => {
    let keys = rotateCookieKeys([], 0, policy, random).keys;
    assert.equal(keys.length, 1);
    const first = keys[0]!;
    const cookie = sealCookie(first, session());
    assert.equal(rotateCookieKeys(keys, DAY - 1, policy, random).changed, false);
    keys = rotateCookieKeys(keys, DAY, policy, random).keys;
    assert.equal(keys.length, 2);
    const set = new CookieKeys(keys);
    assert.notEqual(set.current.id, first.id);
    assert.equal(openCookie(set, cookie).status, COOKIE_OK);
    // first was replaced at DAY: kept until DAY + 7 days, then dropped at the next rotation after that.
    for (let d = 2; d <= 8; d++) keys = rotateCookieKeys(keys, d * DAY, policy, random).keys;
    assert.ok(keys.some((k) => k.id === first.id));
    keys = rotateCookieKeys(keys, 8 * DAY + 1, policy, random).keys;
    assert.equal(
      keys.some((k) => k.id === first.id),
      false,
    );
    assert.equal(openCookie(new CookieKeys(keys), cookie).status, COOKIE_UNKNOWN_KEY);
  });

  it("a new key seals only once it is activationMs old (every server then holds it); a lone key at once", () => {
    assert.equal(activationMs(86400), 10_000);
    assert.equal(activationMs(8), 2000);
    assert.equal(activationMs(0), 10_000, "a fleet member that only reads the file");
    const old = newCookieKey([], 0, random);
    const young = newCookieKey([old], 100_000, random);
    const set = new CookieKeys([old, young], activationMs(86400));
    assert.equal(set.current.id, young.id, "the newest");
    assert.equal(set.sealing(100_000 + 9_999).id, old.id, "not yet the new one");
    assert.equal(set.sealing(100_000 + 10_000).id, young.id);
    assert.equal(new CookieKeys([young], 10_000).sealing(100_000).id, young.id, "the only key seals at once");
  });

  it("the key file round-trips, so two servers with the same file open each other's cookies", () => {
    const keys = rotateCookieKeys(rotateCookieKeys([], 0, policy, random).keys, DAY, policy, random).keys;
    const text = formatKeyFile(keys);
    const serverA = new CookieKeys(keys);
    const serverB = new CookieKeys(parseKeyFile(text));
    const cookie = sealCookie(serverA.current, session());
    assert.equal(openCookie(serverB, cookie).status, COOKIE_OK);
    assert.equal(serverB.current.id, serverA.current.id);
  });

  it("a key file that does not parse names the line; an empty one is refused; duplicate ids are refused", () => {
    const code = (fn: () => unknown, line: RegExp) =>
      assert.throws(
        fn,
        (e: unknown) => e instanceof NtsError && e.code === "ERR_NTS_KEY_FILE" && line.test(e.message),
      );
    code(() => parseKeyFile("# nothing\n\n"), /no key/);
    code(() => parseKeyFile(`# c\n0000000a 12 ${"ab".repeat(31)}\n`), /line 2/);
    const line = `0000000a 12 ${"ab".repeat(32)}`;
    code(() => parseKeyFile(`${line}\n${line}\n`), /line 2: key id 0000000a appears twice/);
  });
});

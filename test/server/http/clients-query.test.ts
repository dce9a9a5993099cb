// /api/clients' query string without a server: the defaults, ntpq's filters and sort orders, and a
// QueryError naming the parameter for anything else (the endpoint's 400; test/server/http/server.test.ts
// checks the answers over HTTP).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { numberParam, parseClientQuery, QueryError } from "../../../src/server/http/clients-query.ts";

const parse = (q: string) => parseClientQuery(new URLSearchParams(q));

describe("parseClientQuery", () => {
  it("asks for everything, newest first, by default", () => {
    assert.deepEqual(parse(""), {
      limited: false,
      kod: false,
      mincount: 0,
      mindrop: 0,
      maxlstint: Number.POSITIVE_INFINITY,
      minlstint: 0,
      sort: "lstint",
      descending: false,
      limit: Number.POSITIVE_INFINITY,
    });
  });

  it("reads ntpq's filters, a reversed sort and a limit", () => {
    const q = parse("limited&kod=1&mincount=3&mindrop=2&maxlstint=0.5&minlstint=0.25&sort=-count&limit=2");
    assert.deepEqual(
      [q.limited, q.kod, q.mincount, q.mindrop, q.maxlstint, q.minlstint, q.sort, q.descending, q.limit],
      [true, true, 3, 2, 0.5, 0.25, "count", true, 2],
    );
    assert.equal(parse("kod=no").kod, false);
    assert.equal(parse("limit=0").limit, Number.POSITIVE_INFINITY, "0 = all");
  });

  it("names the bad parameter", () => {
    for (const [q, name] of [
      ["sort=score", /^sort:/],
      ["mincount=-1", /^mincount:/],
      ["mincount=1.5", /^mincount:.*whole number/],
      ["limit=x", /^limit:/],
      ["maxlstint=", /^maxlstint:/],
      ["frobnicate=1", /unknown parameter "frobnicate"/],
      ["kod=maybe", /^kod:/],
    ] as const) {
      assert.throws(
        () => parse(q),
        (e: unknown) => e instanceof QueryError && name.test(e.message),
        q,
      );
    }
  });

  it("numberParam falls back when absent (as /api/blocklist's limit does)", () => {
    assert.equal(numberParam(new URLSearchParams(""), "limit", 1000, true), 1000);
    assert.equal(numberParam(new URLSearchParams("limit=5"), "limit", 1000, true), 5);
    assert.throws(() => numberParam(new URLSearchParams("limit=-5"), "limit", 1000, true), QueryError);
  });
});

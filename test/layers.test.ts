// The layers of src/ point down (each folder's README says what it may import). This test reads every import
// of every source file, so that the next import that points up a layer fails CI rather than waiting for a
// reader to notice. The order, bottom first:
//
//   base < protocol < defence, nts < config < core < client, control, survey < sim < server < cli
//
// base holds what every layer may use (the version string, the coded error class). Folders of one rank
// (defence and nts; client, control, survey) are independent of each other.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, test } from "node:test";

const SRC = resolve(import.meta.dirname, "..", "src");

export const LAYER_RANK: Readonly<Record<string, number>> = Object.freeze({
  base: 0,
  protocol: 1,
  defence: 2,
  nts: 2,
  config: 3,
  core: 4,
  client: 5,
  control: 5,
  survey: 5,
  sim: 6,
  server: 7,
  cli: 8,
});

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Relative module specifiers of static imports, re-exports and dynamic imports with a literal. */
export function importsOf(text: string): string[] {
  const found: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) found.push(m[1]!);
  return found;
}

function layerOf(file: string): string {
  return relative(SRC, file).split(sep)[0]!;
}

interface Violation {
  from: string;
  to: string;
  why: string;
}

function violations(): Violation[] {
  const out: Violation[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    const fromRank = LAYER_RANK[from];
    if (fromRank === undefined) {
      out.push({
        from: relative(SRC, file),
        to: "",
        why: `folder src/${from} has no place in the layer order`,
      });
      continue;
    }
    for (const spec of importsOf(readFileSync(file, "utf8"))) {
      const target = resolve(dirname(file), spec);
      const rel = relative(SRC, target);
      if (rel.startsWith("..")) {
        out.push({ from: relative(SRC, file), to: spec, why: "imports from outside src/" });
        continue;
      }
      const to = layerOf(target);
      if (to === from) continue;
      const toRank = LAYER_RANK[to];
      if (toRank === undefined) {
        out.push({ from: relative(SRC, file), to: rel, why: `src/${to} has no place in the layer order` });
      } else if (toRank > fromRank) {
        out.push({
          from: relative(SRC, file),
          to: rel,
          why: `${from} may not import ${to} (a higher layer)`,
        });
      } else if (toRank === fromRank) {
        out.push({ from: relative(SRC, file), to: rel, why: `${from} and ${to} are independent layers` });
      }
    }
  }
  return out;
}

describe("layers of src/", () => {
  test("no import points up a layer or across independent ones", () => {
    const found = violations();
    assert.deepEqual(
      found.map((v) => `src/${v.from} -> ${v.to}: ${v.why}`),
      [],
      "move the imported thing down (src/base holds what every layer shares) or the importer up",
    );
  });

  test("the import reader sees every form of import (a check that reads nothing would pass anything)", () => {
    const text = [
      'import { a } from "../server/x.ts";',
      'import type { B } from "./b.ts";',
      'export { c } from "../cli/c.ts";',
      'export * from "../core/d.ts";',
      'const e = await import("../sim/e.ts");',
      'import "./side-effect.ts";',
      'import { f } from "node:fs";',
      "import {\n  g,\n  h,\n} from '../defence/g.ts';",
    ].join("\n");
    assert.deepEqual(importsOf(text), [
      "../server/x.ts",
      "./b.ts",
      "../cli/c.ts",
      "../core/d.ts",
      "../sim/e.ts",
      "./side-effect.ts",
      "../defence/g.ts",
    ]);
  });

  test("every folder of src/ has a rank and a README that says what lives there and what it may import", () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    for (const f of folders) {
      assert.ok(LAYER_RANK[f] !== undefined, `src/${f} is in the layer order of test/layers.test.ts`);
      const readme = readFileSync(join(SRC, f, "README.md"), "utf8");
      assert.match(readme, /may import/i, `src/${f}/README.md says what it may import`);
    }
  });
});

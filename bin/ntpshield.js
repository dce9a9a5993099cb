#!/usr/bin/env node
// Entry point of the `ntpshield` command. From a checkout (Node 24 strips the TypeScript types itself) it
// runs src/ directly; installed as a package, where Node does not strip types inside node_modules, it runs
// the compiled JavaScript in dist/ that `npm pack` builds.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = new URL("../src/cli/entry.ts", import.meta.url);
const compiled = new URL("../dist/cli/entry.js", import.meta.url);
const installed = fileURLToPath(import.meta.url).includes("/node_modules/");
const [major] = process.versions.node.split(".").map(Number);

if (!installed && existsSync(source) && major >= 24) {
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    `ntpshield needs Node.js 24 or later to run from source (this is ${process.version}); ` +
      "run it through npm (npm start, npx ntpshield), which puts the pinned Node 24 on the PATH, or build dist/ with npm run build.\n",
  );
  process.exitCode = 1;
}

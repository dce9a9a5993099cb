// Compiles src/ to dist/ for the published package: Node strips TypeScript types only outside
// node_modules, so an installed ntpshield must run JavaScript. From a checkout, bin/ntpshield.js runs src/.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";

const root = new URL("..", import.meta.url);
rmSync(new URL("dist", root), { recursive: true, force: true });
execFileSync(
  process.execPath,
  [new URL("node_modules/typescript/bin/tsc", root).pathname, "-p", "tsconfig.build.json"],
  {
    cwd: root,
    stdio: "inherit",
  },
);

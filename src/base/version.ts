import { readFileSync } from "node:fs";

function readVersion(): string {
  // The package.json two levels up from src/base (or dist/base) is ours.
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export const VERSION = readVersion();

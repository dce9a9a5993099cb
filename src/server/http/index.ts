// The monitoring endpoint (docs/monitoring.md): server.ts serves it; the other files are its parts.
export * from "./body.ts";
export * from "./clients.ts";
export * from "./clients-query.ts";
export * from "./errors.ts";
export * from "./metrics.ts";
export * from "./packet-totals.ts";
export * from "./server.ts";

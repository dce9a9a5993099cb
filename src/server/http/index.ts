// The monitoring endpoint (docs/monitoring.md): server.ts serves it; the other files are its parts.
export * from "./server.ts";

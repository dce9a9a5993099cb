// The simulator's populations of clients, with the paper's parameters as defaults (§2-§5).
export * from "./burstmakers.ts";
export * from "./elephants.ts";
export * from "./mice.ts";
export * from "./routers.ts";
export * from "./scripts.ts";

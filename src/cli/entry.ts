// The process's entry point (`npm start`, bin/ntpshield.js): holds SIGTERM, SIGINT and SIGHUP before the
// command's modules are loaded (early-signals.ts says why), then loads and runs the command.
import { holdSignals } from "./early-signals.ts";

holdSignals();
await import("./main.ts");

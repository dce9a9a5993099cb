// `ntpshield check-config FILE`: validates a configuration without serving. Exit 0 and a one-line summary
// when it is valid; exit 2 and one line per problem, each naming its key, when it is not. With [blocklist]
// enabled, the database path is looked at too (what serve would refuse to open), without creating anything;
// while the blocklist is off serve never opens it, so neither is it checked.
// The IPv4 multicast BCP's rules (src/config/multicast.ts) are errors, which refuse the file as any problem
// does, or warnings, printed one a line ("KEY: warning: ...") beside a valid file's summary (exit 0).
// `ntpshield check-config --json-schema`: prints the file's JSON Schema, written from the same table the
// validator reads, for editors' TOML support (docs/configuration.md).

import { ConfigError, configJsonSchema, loadConfigFile, multicastFindings } from "../config/index.ts";
import { blocklistPathProblem, resolveBlocklistPath } from "../server/blocklist/index.ts";
import { settingsFromConfig } from "./serve.ts";

export const CHECK_USAGE = `usage: ntpshield check-config FILE
       ntpshield check-config --json-schema

  FILE           validate a configuration file without serving; each problem names its key (exit 2).
                 With [blocklist] enabled, also checks that its database can be opened or created
                 (nothing is created). [broadcast] and [manycast] groups are checked against the IPv4
                 multicast BCP: errors refuse the file, warnings are printed and the file is valid
  --json-schema  print the configuration's JSON Schema (draft 2020-12), for editors and other tools`;

export function checkConfigCommand(argv: string[]): number {
  const file = argv[0];
  if (file === "--json-schema" && argv.length === 1) {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (!file || argv.length !== 1 || file.startsWith("-")) {
    process.stderr.write(`${CHECK_USAGE}\n`);
    return file === "--help" || file === "-h" ? 0 : 2;
  }
  try {
    const config = loadConfigFile(file);
    const settings = settingsFromConfig(config);
    const source =
      settings.clock.upstream.length > 0
        ? `upstream ${settings.clock.upstream.join(", ")}`
        : `local stratum ${settings.clock.stratum}`;
    let blocklist = "";
    if (config.blocklist.enabled) {
      // Resolved as serve resolves it: a relative path is taken from the file's directory.
      const path = resolveBlocklistPath(config.blocklist.path, file);
      const why = blocklistPathProblem(path);
      if (why !== undefined) {
        process.stderr.write(
          `${file}: blocklist.path: cannot open or create ${path}: ${why} ` +
            "(checked because [blocklist] enabled = true)\n",
        );
        return 2;
      }
      blocklist = `; blocklist ${path}`;
    }
    const warnings = multicastFindings(config).filter((f) => f.severity === "warning");
    for (const w of warnings) process.stderr.write(`${file}: ${w.key}: warning: ${w.reason}\n`);
    const warned = warnings.length > 0 ? `; ${warnings.length} warning${warnings.length > 1 ? "s" : ""}` : "";
    process.stdout.write(
      `${file}: valid (listen ${config.server.listen.join(", ")}; clock ${source}${blocklist}${warned})\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      const problems = err.problems.length > 0 ? err.problems : [{ key: err.key, reason: err.reason }];
      for (const p of problems)
        process.stderr.write(p.key ? `${file}: ${p.key}: ${p.reason}\n` : `${file}: ${p.reason}\n`);
      return 2;
    }
    throw err;
  }
}

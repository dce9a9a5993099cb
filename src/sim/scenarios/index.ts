// The paper's incidents as scenarios: `ntpshield simulate <name>` and `ntpshield load --scenario <name>`.
import { balancer } from "./balancer.ts";
import type { Scenario } from "./common.ts";
import { nist } from "./nist.ts";
import { usno } from "./usno.ts";
import { wisconsin } from "./wisconsin.ts";

export type { LivePlan, Scenario, ScenarioOptions } from "./common.ts";

export const SCENARIOS: Readonly<Record<string, Scenario>> = Object.freeze({
  usno,
  wisconsin,
  nist,
  balancer,
});

export const SCENARIO_NAMES: readonly string[] = Object.freeze(Object.keys(SCENARIOS));

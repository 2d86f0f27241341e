/**
 * The diagnosis module of the security center: host inventories matched
 * against advisories and the policy, in both directions (new advisory →
 * affected hosts; new host report → its findings), with explained findings
 * and planned countermeasures.
 *
 * @packageDocumentation
 */
export type { HostInventory, InventoryFile, InventoryPackage, InventoryService } from './inventory.js';
export type { FileRule, HostPolicy, Policy, RolePolicy, ServiceRule, SettingRule } from './policy.js';
export { checkPolicy, readSetting, resolveHostPolicy, type ResolvedHostPolicy } from './policy-check.js';
export {
  describeRange,
  describeStep,
  findingKey,
  isAutomatic,
  type FileFinding,
  type Finding,
  type ServiceFinding,
  type SettingFinding,
  type VulnerabilityFinding,
} from './findings.js';
export {
  DiagnosisEngine,
  INVENTORY_LIMITS,
  loadAdvisories,
  type AdvisoryImpact,
  type DiagnosisEngineOptions,
  type HostDiagnosis,
} from './engine.js';
export { planCountermeasures, type HostPlan, type PlannedStep } from './plan.js';

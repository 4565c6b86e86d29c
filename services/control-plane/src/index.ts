export { type ControlPlanePluginOptions, controlPlanePlugin } from './app.ts';
export { hubServerConfig, tenantUser } from './domain/nats-config.ts';
export {
  CONTROL_PLANE_CHANGED_SUBJECT,
  type ControlPlane,
  type ControlPlaneOptions,
  startControlPlane,
} from './service.ts';
export {
  ensureTenant,
  hashPassword,
  migrateControlPlane,
  putTenant,
  storeAggregates,
} from './store/tenants.ts';
export { buildUiIfNeeded, serveUi, UI_ROOT } from './ui.ts';
export { CONTROL_PLANE_ACTOR, migrateUplink, UplinkAgent, type UplinkAgentOptions } from './uplink/agent.ts';
export { type ConfigChange, ControlPlaneHub } from './uplink/hub.ts';
export { LocalUplink, type LocalUplinkOptions } from './uplink/local.ts';
export { Requester, RequestTimeoutError, respond } from './uplink/rpc.ts';
export { subjects, TENANT_ID, tenantOfSubject } from './uplink/subjects.ts';

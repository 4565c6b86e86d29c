import { describe, expect, it } from 'vitest';
import {
  chartValues,
  enabledInChart,
  expectNoResource,
  expectResource,
  interpolation,
  resources,
  secretKeys,
  single,
  synth,
} from './synth.ts';

describe('GcpDataPlaneStack', () => {
  describe('gate only', () => {
    const stack = synth('gcp', 'data-plane', { components: ['gate'], region: 'europe-west1' });

    it('creates a network with a subnetwork for nodes, pods and services, and Cloud NAT for egress', () => {
      expectResource(stack, 'google_compute_network', { auto_create_subnetworks: false });
      expectResource(stack, 'google_compute_subnetwork', {
        ip_cidr_range: '10.40.0.0/20',
        region: 'europe-west1',
        private_ip_google_access: true,
        secondary_ip_range: [
          { range_name: 'pods', ip_cidr_range: '10.40.128.0/17' },
          { range_name: 'services', ip_cidr_range: '10.40.16.0/20' },
        ],
      });
      expectResource(stack, 'google_compute_router_nat', {
        nat_ip_allocate_option: 'AUTO_ONLY',
        source_subnetwork_ip_ranges_to_nat: 'ALL_SUBNETWORKS_ALL_IP_RANGES',
      });
    });

    it('peers the network with Google services for Cloud SQL and Memorystore', () => {
      expectResource(stack, 'google_compute_global_address', {
        purpose: 'VPC_PEERING',
        address_type: 'INTERNAL',
      });
      expectResource(stack, 'google_service_networking_connection', {
        service: 'servicenetworking.googleapis.com',
      });
    });

    it('runs GKE with private nodes, Workload Identity and a least-privilege node service account', () => {
      expectResource(stack, 'google_container_cluster', {
        private_cluster_config: { enable_private_nodes: true },
        workload_identity_config: { workload_pool: 'acme-prod.svc.id.goog' },
        ip_allocation_policy: {
          cluster_secondary_range_name: 'pods',
          services_secondary_range_name: 'services',
        },
        remove_default_node_pool: true,
        deletion_protection: true,
      });
      const pool = single(stack, 'google_container_node_pool');
      const nodeConfig = pool.node_config as Record<string, unknown>;
      expect(nodeConfig.service_account).toMatch(/google_service_account\..*\.email/);
      expect(nodeConfig.workload_metadata_config).toEqual({ mode: 'GKE_METADATA' });
      const roles = resources(stack, 'google_project_iam_member').map((member) => member.role);
      expect(roles.sort()).toEqual([
        'roles/logging.logWriter',
        'roles/monitoring.metricWriter',
        'roles/monitoring.viewer',
        'roles/stackdriver.resourceMetadata.writer',
      ]);
    });

    it('creates Cloud SQL PostgreSQL 15 on a private IP only, TLS-only, backed up and protected', () => {
      expectResource(stack, 'google_sql_database_instance', {
        database_version: 'POSTGRES_15',
        deletion_protection: true,
        settings: {
          availability_type: 'REGIONAL',
          deletion_protection_enabled: true,
          ip_configuration: { ipv4_enabled: false, ssl_mode: 'ENCRYPTED_ONLY' },
          backup_configuration: { enabled: true, point_in_time_recovery_enabled: true },
        },
      });
      const instance = single(stack, 'google_sql_database_instance');
      const ip = (instance.settings as Record<string, Record<string, unknown>>).ip_configuration;
      expect(ip?.private_network).toMatch(/google_compute_network\..*\.id/);
      expect(instance.depends_on).toEqual([expect.stringMatching(/google_service_networking_connection/)]);
    });

    it('creates Memorystore with AUTH and TLS over private service access', () => {
      expectResource(stack, 'google_redis_instance', {
        auth_enabled: true,
        transit_encryption_mode: 'SERVER_AUTHENTICATION',
        connect_mode: 'PRIVATE_SERVICE_ACCESS',
        tier: 'STANDARD_HA',
      });
    });

    it('keeps the connection values in Secret Manager and the Kubernetes Secret the chart reads', () => {
      expectResource(stack, 'google_secret_manager_secret', { secret_id: 'allot-data-plane' });
      expect(secretKeys(stack)).toEqual([
        'ALLOT_API_KEY',
        'DATABASE_URL',
        'NATS_URL',
        'REDIS_TLS_CA',
        'REDIS_URL',
      ]);
      const data = single(stack, 'kubernetes_secret_v1').data as Record<string, string>;
      expect(data.REDIS_URL).toMatch(/^rediss:\/\/:\$\{google_redis_instance\..*\.auth_string\}@/);
      expect(data.DATABASE_URL).toMatch(/private_ip_address\}:5432\/allot\?sslmode=no-verify$/);
    });

    it('installs the chart with only the gate and no dev backends, and lets it reach Memorystore on 6378', () => {
      expect(enabledInChart(stack)).toEqual(['gate']);
      const values = chartValues(stack);
      expect(values.devBackends).toEqual({ postgres: { enabled: false }, redis: { enabled: false } });
      expect(values.gate).toEqual({
        enabled: true,
        networkPolicy: { backends: { redis: { ports: [6378] } } },
      });
    });

    it('runs Dataplane V2 so that the NetworkPolicies of the chart are enforced', () => {
      expectResource(stack, 'google_container_cluster', { datapath_provider: 'ADVANCED_DATAPATH' });
    });
  });

  describe('metering only', () => {
    const stack = synth('gcp', 'data-plane', { components: ['metering'] });

    it('creates Cloud SQL but no Memorystore, and the Secret has no Redis keys', () => {
      expectResource(stack, 'google_sql_database_instance', { database_version: 'POSTGRES_15' });
      expectNoResource(stack, 'google_redis_instance');
      expect(secretKeys(stack)).toEqual(['ALLOT_API_KEY', 'DATABASE_URL', 'NATS_URL']);
      expect(enabledInChart(stack)).toEqual(['metering']);
    });
  });

  describe('every component', () => {
    const stack = synth('gcp', 'data-plane', {
      components: ['gate', 'credits', 'metering', 'governance', 'mcp', 'uplink'],
      uplink: { url: 'nats://hub.allot.example:4222', user: 'acme' },
      replicas: { credits: 3 },
      redis: { highAvailability: false, memoryGb: 2 },
      image: { registry: 'europe-docker.pkg.dev', tag: '0.1.0' },
    });

    it('enables every component and the uplink with the hub', () => {
      expect(enabledInChart(stack)).toEqual(['credits', 'gate', 'governance', 'mcp', 'metering', 'uplink']);
      const values = chartValues(stack);
      const image = { image: { tag: '0.1.0' } };
      const redisOnTls = { networkPolicy: { backends: { redis: { ports: [6378] } } } };
      expect(values.credits).toEqual({
        enabled: true,
        server: { replicaCount: 3, autoscaling: { minReplicas: 3 } },
        worker: { replicaCount: 3, autoscaling: { minReplicas: 3 } },
        ...image,
        ...redisOnTls,
      });
      // Metering uses no Redis: its policy stays as the chart has it.
      expect(values.metering).toEqual({ enabled: true, ...image });
      expect(values.uplink).toEqual({
        enabled: true,
        url: 'nats://hub.allot.example:4222',
        user: 'acme',
        ...image,
        ...redisOnTls,
      });
      expect(values.global).toMatchObject({
        existingSecret: 'allot-secrets',
        imageRegistry: 'europe-docker.pkg.dev',
      });
      expect(secretKeys(stack)).toContain('ALLOT_UPLINK_PASSWORD');
    });

    it('follows the Redis sizing', () => {
      expectResource(stack, 'google_redis_instance', { tier: 'BASIC', memory_size_gb: 2 });
    });
  });

  describe('with Memorystore for Redis Cluster', () => {
    const stack = synth('gcp', 'data-plane', {
      components: ['gate', 'credits', 'governance', 'uplink'],
      uplink: { url: 'nats://hub.allot.example:4222', user: 'acme' },
      redis: { mode: 'cluster', shards: 3, replicasPerShard: 1 },
    });
    const cluster = () => single(stack, 'google_redis_cluster');

    it('creates the cluster over Private Service Connect, shards spread over zones, TLS on', () => {
      expect(cluster()).toMatchObject({
        name: 'allot-redis',
        shard_count: 3,
        replica_count: 1,
        node_type: 'REDIS_HIGHMEM_MEDIUM',
        zone_distribution_config: { mode: 'MULTI_ZONE' },
        transit_encryption_mode: 'TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION',
        // IAM tokens expire hourly and the services' client takes a static URL: no AUTH.
        authorization_mode: 'AUTH_MODE_DISABLED',
        deletion_protection_enabled: true,
        psc_configs: [{ network: expect.stringMatching(/^\$\{google_compute_network\..*\.id\}$/) }],
      });
      expectNoResource(stack, 'google_redis_instance');
    });

    it('creates the service connection policy Memorystore needs in the stack subnetwork', () => {
      const policy = single(stack, 'google_network_connectivity_service_connection_policy');
      expect(policy).toMatchObject({
        service_class: 'gcp-memorystore-redis',
        location: 'us-central1',
        network: expect.stringMatching(/^\$\{google_compute_network\..*\.id\}$/),
        psc_config: { subnetworks: [expect.stringMatching(/google_compute_subnetwork\..*\.id/)] },
      });
      expect(cluster().depends_on).toEqual([
        expect.stringMatching(/^google_network_connectivity_service_connection_policy\./),
      ]);
    });

    it('hands the services the discovery endpoint, the cluster CA and REDIS_CLUSTER, and opens the node ports', () => {
      const data = single(stack, 'kubernetes_secret_v1').data as Record<string, string>;
      expect(data.REDIS_URL).toMatch(
        /^rediss:\/\/\$\{google_redis_cluster\..*\.discovery_endpoints\[0\]\.address\}:\$\{google_redis_cluster\..*\.discovery_endpoints\[0\]\.port\}$/,
      );
      expect(data.REDIS_TLS_CA).toMatch(
        /^\$\{join\("\\n", flatten\(google_redis_cluster\..*\.managed_server_ca\[\*\]\.ca_certs\[\*\]\.certificates\)\)\}$/,
      );
      const values = chartValues(stack);
      expect(values.global).toMatchObject({ redis: { cluster: true }, nats: { replicas: 3 } });
      const ports = [6379, { port: 11000, endPort: 13047 }];
      for (const component of ['gate', 'credits', 'governance', 'uplink']) {
        expect(values[component]?.networkPolicy, component).toEqual({ backends: { redis: { ports } } });
      }
    });
  });

  it('uses the service connection policy an existing network has', () => {
    const stack = synth('gcp', 'data-plane', {
      components: ['gate'],
      network: {
        mode: 'existing',
        networkId: 'projects/acme-prod/global/networks/shared',
        subnetIds: ['gke'],
        privateServiceAccess: 'existing',
      },
      redis: { mode: 'cluster', serviceConnectionPolicy: 'existing' },
    });
    expectNoResource(stack, 'google_network_connectivity_service_connection_policy');
    expectResource(stack, 'google_redis_cluster', {
      psc_configs: [{ network: 'projects/acme-prod/global/networks/shared' }],
    });
  });

  it('puts the policy in an existing subnetwork given by name, as its full id', () => {
    const stack = synth('gcp', 'data-plane', {
      components: ['gate'],
      region: 'europe-west1',
      network: {
        mode: 'existing',
        networkId: 'projects/acme-prod/global/networks/shared',
        subnetIds: ['gke'],
      },
      redis: { mode: 'cluster' },
    });
    expectResource(stack, 'google_network_connectivity_service_connection_policy', {
      psc_config: { subnetworks: ['projects/acme-prod/regions/europe-west1/subnetworks/gke'] },
    });
  });

  describe('in an existing network and cluster', () => {
    const network = 'projects/acme-prod/global/networks/shared';
    const stack = synth('gcp', 'data-plane', {
      components: ['gate'],
      network: {
        mode: 'existing',
        networkId: network,
        subnetIds: ['projects/acme-prod/regions/us-central1/subnetworks/gke'],
        privateServiceAccess: 'existing',
      },
      cluster: { mode: 'existing', name: 'platform', location: 'us-central1-a' },
    });

    it('creates no network, NAT, peering or cluster', () => {
      for (const type of [
        'google_compute_network',
        'google_compute_subnetwork',
        'google_compute_router_nat',
        'google_service_networking_connection',
        'google_container_cluster',
        'google_container_node_pool',
        'google_service_account',
      ]) {
        expectNoResource(stack, type);
      }
      expect(stack.json.data?.google_container_cluster).toBeDefined();
    });

    it('attaches Cloud SQL and Memorystore to the given network', () => {
      expectResource(stack, 'google_sql_database_instance', {
        settings: { ip_configuration: { ipv4_enabled: false, private_network: network } },
      });
      expectResource(stack, 'google_redis_instance', { authorized_network: network });
    });

    it('reaches the existing cluster with its endpoint and an access token', () => {
      const [kubernetes] = stack.json.provider?.kubernetes ?? [];
      expect(kubernetes?.host).toMatch(/^https:\/\/\$\{data\.google_container_cluster\./);
      expect(kubernetes?.token).toMatch(/data\.google_client_config\..*\.access_token/);
    });
  });

  it('creates the private service access peering on an existing network that lacks it', () => {
    const stack = synth('gcp', 'data-plane', {
      components: ['metering'],
      network: { mode: 'existing', networkId: 'projects/p/global/networks/n', subnetIds: ['gke'] },
    });
    expectResource(stack, 'google_service_networking_connection', {
      network: 'projects/p/global/networks/n',
    });
    expectNoResource(stack, 'google_compute_network');
  });
});

describe('GcpControlPlaneStack', () => {
  const stack = synth('gcp', 'control-plane', { replicaCount: 3, hub: { storageGb: 50 } });

  it('creates its own private Cloud SQL and no Memorystore', () => {
    expectResource(stack, 'google_sql_database_instance', {
      name: 'allot-control-postgres',
      settings: { ip_configuration: { ipv4_enabled: false } },
    });
    expectNoResource(stack, 'google_redis_instance');
    expect(secretKeys(stack)).toEqual(['ALLOT_API_KEY', 'ALLOT_HUB_PASSWORD', 'DATABASE_URL']);
  });

  it('installs only the control plane and its hub, on a reserved address', () => {
    expect(enabledInChart(stack)).toEqual(['controlPlane']);
    const values = chartValues(stack);
    expect(values.controlPlane).toMatchObject({
      replicaCount: 3,
      hub: {
        publicUrl: expect.stringMatching(
          /^nats:\/\/\$\{google_compute_address\.hub-address\.address\}:4222$/,
        ),
      },
    });
    expect(values.nats).toMatchObject({
      enabled: true,
      config: {
        jetstream: { fileStore: { pvc: { size: '50Gi' } } },
        merge: { authorization: expect.anything() },
      },
    });
    expectResource(stack, 'google_compute_address', { address_type: 'EXTERNAL' });
    const service = single(stack, 'kubernetes_service_v1');
    expect(service.spec).toMatchObject({
      type: 'LoadBalancer',
      load_balancer_ip: interpolation('google_compute_address.hub-address.address'),
      load_balancer_source_ranges: ['0.0.0.0/0'],
    });
  });
});

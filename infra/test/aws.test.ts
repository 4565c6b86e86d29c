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

const hub = { url: 'tls://hub.allot.example:443', user: 'acme' };

describe('AwsDataPlaneStack', () => {
  describe('gate only', () => {
    const stack = synth('aws', 'data-plane', { components: ['gate'] });

    it('creates a VPC with private subnets whose egress goes through a NAT gateway per zone', () => {
      expectResource(stack, 'aws_vpc', { cidr_block: '10.40.0.0/16', enable_dns_hostnames: true });
      const subnets = resources(stack, 'aws_subnet');
      const privateSubnets = subnets.filter((s) =>
        String((s.tags as Record<string, string>).Name).includes('private'),
      );
      expect(privateSubnets.map((s) => s.cidr_block)).toEqual([
        '10.40.0.0/19',
        '10.40.32.0/19',
        '10.40.64.0/19',
      ]);
      expect(subnets.every((s) => s.map_public_ip_on_launch === false)).toBe(true);
      expect(resources(stack, 'aws_nat_gateway')).toHaveLength(3);
      const privateRoutes = resources(stack, 'aws_route_table').filter((table) =>
        String((table.tags as Record<string, string>).Name).includes('private'),
      );
      expect(privateRoutes).toHaveLength(3);
      for (const table of privateRoutes) {
        const [route] = table.route as Record<string, string>[];
        expect(route?.nat_gateway_id).toMatch(/aws_nat_gateway/);
        expect(route?.gateway_id ?? null).toBeNull();
      }
    });

    it('runs EKS and its managed nodes in the private subnets, with Secrets encrypted by KMS', () => {
      const cluster = single(stack, 'aws_eks_cluster');
      const vpc = cluster.vpc_config as Record<string, unknown>;
      expect(vpc.subnet_ids).toEqual(
        expect.arrayContaining([expect.stringMatching(/aws_subnet\.network_private-0/)]),
      );
      expect(JSON.stringify(vpc.subnet_ids)).not.toMatch(/public/);
      expect(vpc.endpoint_private_access).toBe(true);
      expect(cluster.encryption_config).toEqual({
        provider: { key_arn: expect.stringMatching(/aws_kms_key/) },
        resources: ['secrets'],
      });
      const nodes = single(stack, 'aws_eks_node_group');
      expect(nodes.subnet_ids).toEqual(vpc.subnet_ids);
      expectResource(stack, 'aws_eks_addon', { addon_name: 'aws-ebs-csi-driver' });
    });

    it('creates RDS PostgreSQL 15 encrypted with KMS, private, TLS-only, protected and backed up', () => {
      expectResource(stack, 'aws_db_instance', {
        engine: 'postgres',
        engine_version: '15',
        storage_encrypted: true,
        publicly_accessible: false,
        deletion_protection: true,
        multi_az: true,
        backup_retention_period: 7,
        skip_final_snapshot: false,
        iam_database_authentication_enabled: false,
      });
      const db = single(stack, 'aws_db_instance');
      expect(db.kms_key_id).toMatch(/^\$\{aws_kms_key\..*\.arn\}$/);
      expect(db.db_subnet_group_name).toMatch(/aws_db_subnet_group\.postgres_subnets/);
      expectResource(stack, 'aws_db_parameter_group', {
        family: 'postgres15',
        parameter: [{ name: 'rds.force_ssl', value: '1' }],
      });
    });

    it('admits the databases only from the cluster security group', () => {
      const rules = resources(stack, 'aws_vpc_security_group_ingress_rule');
      expect(rules.map((rule) => rule.from_port).sort()).toEqual([5432, 6379]);
      for (const rule of rules) {
        expect(rule.referenced_security_group_id).toMatch(
          /aws_eks_cluster\..*\.vpc_config\[0\]\.cluster_security_group_id/,
        );
        expect(rule.cidr_ipv4).toBeUndefined();
      }
    });

    it('creates ElastiCache Redis encrypted at rest and in transit, with an AUTH token', () => {
      expectResource(stack, 'aws_elasticache_replication_group', {
        at_rest_encryption_enabled: 'true',
        transit_encryption_enabled: true,
        transit_encryption_mode: 'required',
        automatic_failover_enabled: true,
      });
      const redis = single(stack, 'aws_elasticache_replication_group');
      expect(redis.auth_token).toMatch(/random_password/);
      expect(redis.kms_key_id).toMatch(/aws_kms_key/);
    });

    it('keeps the connection values in Secrets Manager (KMS) and in the Kubernetes Secret the chart reads', () => {
      const secret = single(stack, 'aws_secretsmanager_secret');
      expect(secret.kms_key_id).toMatch(/aws_kms_key/);
      expect(secretKeys(stack)).toEqual(['ALLOT_API_KEY', 'DATABASE_URL', 'NATS_URL', 'REDIS_URL']);
      const data = single(stack, 'kubernetes_secret_v1').data as Record<string, string>;
      expect(data.REDIS_URL).toMatch(/^rediss:\/\//);
      expect(data.DATABASE_URL).toMatch(/^postgres:\/\/allot:\$\{random_password\..*sslmode=no-verify$/);
      expectResource(stack, 'kubernetes_secret_v1', { metadata: { name: 'allot-secrets' } });
    });

    it('installs the chart with only the gate, no dev backends, NATS R3 in the cluster and the existing secret', () => {
      expect(enabledInChart(stack)).toEqual(['gate']);
      const values = chartValues(stack);
      expect(values.global).toEqual({
        existingSecret: 'allot-secrets',
        allowDevSecret: false,
        devSecret: null,
        tenant: 'default',
        // One Redis primary; every stream and bucket on the three in-cluster NATS servers R3.
        redis: { cluster: false },
        nats: { replicas: 3 },
      });
      expect(values.devBackends).toEqual({ postgres: { enabled: false }, redis: { enabled: false } });
      expect(values.nats).toEqual({
        enabled: true,
        config: {
          cluster: { enabled: true, replicas: 3 },
          jetstream: {
            enabled: true,
            fileStore: { enabled: true, pvc: { enabled: true, size: '10Gi' } },
            merge: { sync_interval: 'always' },
          },
        },
        podTemplate: {
          topologySpreadConstraints: {
            'topology.kubernetes.io/zone': { maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' },
          },
        },
        podDisruptionBudget: { enabled: true },
      });
      // ElastiCache listens on 6379, the chart's NetworkPolicy default.
      expect(values.gate).toEqual({ enabled: true });
      expect(single(stack, 'helm_release').chart).toMatch(/\/charts\/allot$/);
      expect(secretKeys(stack)).toContain('NATS_URL');
      expect((single(stack, 'kubernetes_secret_v1').data as Record<string, string>).NATS_URL).toBe(
        'nats://allot-nats.allot.svc.cluster.local:4222',
      );
    });

    it('has the VPC CNI enforce the NetworkPolicies of the chart, before the nodes join', () => {
      expectResource(stack, 'aws_eks_addon', {
        addon_name: 'vpc-cni',
        configuration_values: JSON.stringify({ enableNetworkPolicy: 'true' }),
      });
      expect(single(stack, 'aws_eks_node_group').depends_on).toContainEqual(
        expect.stringMatching(/aws_eks_addon\.cluster_vpc-cni/),
      );
    });
  });

  describe('metering only', () => {
    const stack = synth('aws', 'data-plane', { components: ['metering'] });

    it('creates Postgres but no Redis, and the Secret has no REDIS_URL', () => {
      expectResource(stack, 'aws_db_instance', { engine: 'postgres' });
      expectNoResource(stack, 'aws_elasticache_replication_group');
      expect(resources(stack, 'aws_vpc_security_group_ingress_rule').map((rule) => rule.from_port)).toEqual([
        5432,
      ]);
      expect(secretKeys(stack)).toEqual(['ALLOT_API_KEY', 'DATABASE_URL', 'NATS_URL']);
      expect(enabledInChart(stack)).toEqual(['metering']);
    });
  });

  it('gives the uplink Redis too: its process requires REDIS_URL', () => {
    const stack = synth('aws', 'data-plane', { components: ['metering', 'uplink'], uplink: hub });
    expectResource(stack, 'aws_elasticache_replication_group', { transit_encryption_enabled: true });
    expect(secretKeys(stack)).toEqual([
      'ALLOT_API_KEY',
      'ALLOT_UPLINK_PASSWORD',
      'DATABASE_URL',
      'NATS_URL',
      'REDIS_URL',
    ]);
  });

  describe('every component, with an external NATS and replica counts', () => {
    const stack = synth('aws', 'data-plane', {
      tenant: 'acme-prod',
      components: ['gate', 'credits', 'metering', 'governance', 'mcp', 'uplink'],
      uplink: hub,
      nats: { mode: 'external', url: 'nats://nats.internal:4222' },
      replicas: { gate: 4, metering: 2 },
      database: { highAvailability: false, iamAuthentication: true },
      image: { registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com', tag: '0.1.1' },
    });

    it('enables every component with its replica count and the uplink with the hub', () => {
      const values = chartValues(stack);
      const image = { image: { tag: '0.1.1' } };
      expect(enabledInChart(stack)).toEqual(['credits', 'gate', 'governance', 'mcp', 'metering', 'uplink']);
      // The gate's HPA keeps at least the count asked for.
      expect(values.gate).toEqual({
        enabled: true,
        replicaCount: 4,
        autoscaling: { minReplicas: 4 },
        ...image,
      });
      expect(values.metering).toEqual({
        enabled: true,
        server: { replicaCount: 2, autoscaling: { minReplicas: 2 } },
        worker: { replicaCount: 2, autoscaling: { minReplicas: 2 } },
        ...image,
      });
      expect(values.mcp).toEqual({ enabled: true, ...image });
      expect(values.credits).toEqual({ enabled: true, ...image });
      expect(values.uplink).toEqual({ enabled: true, ...hub, ...image });
      expect(values.controlPlane).toEqual({ enabled: false });
      expect(values.nats).toEqual({ enabled: false });
      expect(values.global).toMatchObject({
        tenant: 'acme-prod',
        imageRegistry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
        // The NATS chart's registry setting, for a NATS in the cluster.
        image: { registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com' },
        // A NATS of the tenant's: one replica per stream unless the config says it is a cluster.
        nats: { replicas: 1 },
      });
    });

    it('takes the uplink password as a sensitive variable and the given NATS URL', () => {
      expect(stack.json.variable?.uplink_password).toMatchObject({ sensitive: true, type: 'string' });
      const data = single(stack, 'kubernetes_secret_v1').data as Record<string, string>;
      expect(data.ALLOT_UPLINK_PASSWORD).toBe(interpolation('var.uplink_password'));
      expect(data.NATS_URL).toBe('nats://nats.internal:4222');
      expect(secretKeys(stack)).toEqual([
        'ALLOT_API_KEY',
        'ALLOT_UPLINK_PASSWORD',
        'DATABASE_URL',
        'NATS_URL',
        'REDIS_URL',
      ]);
    });

    it('follows the database settings', () => {
      expectResource(stack, 'aws_db_instance', {
        multi_az: false,
        iam_database_authentication_enabled: true,
      });
    });
  });

  describe('with a Redis Cluster and an external JetStream cluster', () => {
    const stack = synth('aws', 'data-plane', {
      components: ['gate', 'credits', 'mcp'],
      redis: { mode: 'cluster', shards: 3, replicasPerShard: 1, instanceType: 'cache.r7g.large' },
      nats: { mode: 'external', url: 'tls://nats.internal:4222', replicas: 3 },
    });

    it('creates ElastiCache with cluster mode enabled: shards of a primary and a replica, failing over', () => {
      const group = single(stack, 'aws_elasticache_replication_group');
      expect(group).toMatchObject({
        cluster_mode: 'enabled',
        parameter_group_name: 'default.redis7.cluster.on',
        num_node_groups: 3,
        replicas_per_node_group: 1,
        automatic_failover_enabled: true,
        multi_az_enabled: true,
        node_type: 'cache.r7g.large',
        at_rest_encryption_enabled: 'true',
        transit_encryption_enabled: true,
        transit_encryption_mode: 'required',
        auth_token: expect.stringMatching(/random_password/),
      });
      expect(group.num_cache_clusters).toBeUndefined();
    });

    it('points REDIS_URL at the configuration endpoint and tells the services it is a cluster', () => {
      const data = single(stack, 'kubernetes_secret_v1').data as Record<string, string>;
      expect(data.REDIS_URL).toMatch(
        /^rediss:\/\/:\$\{random_password\..*\}@\$\{aws_elasticache_replication_group\..*\.configuration_endpoint_address\}:6379$/,
      );
      expect(stack.json.output?.redis_host?.value).toMatch(/configuration_endpoint_address/);
      const values = chartValues(stack);
      expect(values.global).toMatchObject({ redis: { cluster: true }, nats: { replicas: 3 } });
      expect(values.nats).toEqual({ enabled: false });
      // Every node of the cluster listens on 6379, the chart's NetworkPolicy default.
      expect(values.gate).toEqual({ enabled: true });
    });

    it('points mcp at the gate for what this data plane does not run', () => {
      expect(chartValues(stack).mcp).toEqual({ enabled: true, meteringUrl: '' });
    });
  });

  it('lets a cluster run its shards without replicas, then in one zone each', () => {
    const stack = synth('aws', 'data-plane', {
      components: ['gate'],
      redis: { mode: 'cluster', shards: 2, replicasPerShard: 0 },
    });
    expectResource(stack, 'aws_elasticache_replication_group', {
      num_node_groups: 2,
      replicas_per_node_group: 0,
      automatic_failover_enabled: true,
      multi_az_enabled: false,
    });
  });

  describe('in an existing VPC and cluster', () => {
    const stack = synth('aws', 'data-plane', {
      components: ['gate', 'metering'],
      network: { mode: 'existing', networkId: 'vpc-0abc', subnetIds: ['subnet-a', 'subnet-b'] },
      cluster: { mode: 'existing', name: 'platform', nodeSecurityGroupIds: ['sg-nodes'] },
    });

    it('creates no VPC, no subnets, no NAT and no cluster', () => {
      for (const type of [
        'aws_vpc',
        'aws_subnet',
        'aws_nat_gateway',
        'aws_eks_cluster',
        'aws_eks_node_group',
      ]) {
        expectNoResource(stack, type);
      }
      expect(Object.keys(stack.json.data?.aws_eks_cluster ?? {})).toHaveLength(1);
    });

    it('puts the databases in the given subnets and admits the cluster and the given node groups', () => {
      expectResource(stack, 'aws_db_subnet_group', { subnet_ids: ['subnet-a', 'subnet-b'] });
      expectResource(stack, 'aws_elasticache_subnet_group', { subnet_ids: ['subnet-a', 'subnet-b'] });
      expectResource(stack, 'aws_security_group', { vpc_id: 'vpc-0abc' });
      const sources = resources(stack, 'aws_vpc_security_group_ingress_rule').map(
        (rule) => rule.referenced_security_group_id,
      );
      expect(sources).toContain('sg-nodes');
      expect(sources.some((source) => String(source).includes('data.aws_eks_cluster'))).toBe(true);
    });

    it('reaches the existing cluster through its endpoint with aws eks get-token', () => {
      const [kubernetes] = stack.json.provider?.kubernetes ?? [];
      expect(kubernetes?.host).toMatch(/data\.aws_eks_cluster\..*\.endpoint/);
      expect(kubernetes?.exec).toEqual([
        expect.objectContaining({ command: 'aws', args: expect.arrayContaining(['get-token', 'platform']) }),
      ]);
    });
  });

  it('keeps its state in an encrypted S3 bucket when one is given', () => {
    const stack = synth('aws', 'data-plane', { components: ['gate'], state: { bucket: 'acme-tfstate' } });
    expect(stack.json.terraform?.backend).toEqual({
      s3: {
        bucket: 'acme-tfstate',
        key: 'allot/terraform.tfstate',
        region: 'us-east-1',
        encrypt: true,
        use_lockfile: true,
      },
    });
  });

  it('turns deletion protection off for teardown when asked', () => {
    const stack = synth('aws', 'data-plane', { components: ['metering'], deletionProtection: false });
    expectResource(stack, 'aws_db_instance', { deletion_protection: false });
    expectResource(stack, 'aws_eks_cluster', { deletion_protection: false });
  });
});

describe('AwsControlPlaneStack', () => {
  const stack = synth('aws', 'control-plane', { hub: { allowedCidrs: ['203.0.113.0/24'] } });

  it('creates its own private, encrypted Postgres and no Redis', () => {
    expectResource(stack, 'aws_db_instance', {
      identifier: 'allot-control-postgres',
      storage_encrypted: true,
      publicly_accessible: false,
    });
    expectNoResource(stack, 'aws_elasticache_replication_group');
    expect(secretKeys(stack)).toEqual(['ALLOT_API_KEY', 'ALLOT_HUB_PASSWORD', 'DATABASE_URL']);
  });

  it('installs only the control plane and its NATS hub, and tells it the public hub URL', () => {
    expect(enabledInChart(stack)).toEqual(['controlPlane']);
    const values = chartValues(stack);
    expect(values.controlPlane).toMatchObject({
      replicaCount: 2,
      hub: {
        url: 'nats://allot-nats.allot.svc.cluster.local:4222',
        user: 'control-plane',
        publicUrl: expect.stringMatching(/^nats:\/\/\$\{kubernetes_service_v1\.hub\.status\[0\]/),
      },
    });
  });

  it('never runs the hub open: NATS requires the control plane user, its password from the Secret', () => {
    const nats = chartValues(stack).nats as {
      config: { merge: unknown; cluster: unknown };
      container: { env: Record<string, unknown> };
    };
    expect(nats.config.cluster).toEqual({ enabled: true, replicas: 3 });
    expect(nats.config.merge).toEqual({
      authorization: { users: [{ user: 'control-plane', password: '<< $ALLOT_HUB_PASSWORD >>' }] },
    });
    expect(nats.container.env.ALLOT_HUB_PASSWORD).toEqual({
      valueFrom: { secretKeyRef: { name: 'allot-secrets', key: 'ALLOT_HUB_PASSWORD' } },
    });
  });

  it('exposes the hub through a network load balancer limited to the allowed ranges', () => {
    expectResource(stack, 'kubernetes_service_v1', {
      metadata: { annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' } },
      spec: {
        type: 'LoadBalancer',
        load_balancer_source_ranges: ['203.0.113.0/24'],
        port: [{ name: 'nats', port: 4222, target_port: 'nats', protocol: 'TCP' }],
      },
    });
    expect(stack.json.output?.hub_public_url?.value).toMatch(/^nats:\/\//);
  });
});

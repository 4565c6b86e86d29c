import { describe, expect, it } from 'vitest';
import {
  type Component,
  ConfigError,
  cidrSubnet,
  componentFlags,
  controlPlaneConfig,
  dataPlaneConfig,
  isIpv4Cidr,
  needsPostgres,
  needsRedis,
  REPO_ROOT,
} from '../src/config.ts';

describe('componentFlags', () => {
  it('turns a list into one flag per component', () => {
    expect(componentFlags(['gate', 'metering'], '--components')).toEqual({
      gate: true,
      credits: false,
      metering: true,
      governance: false,
      mcp: false,
      uplink: false,
    });
  });

  it('names the unknown components and the known ones', () => {
    expect(() => componentFlags(['gate', 'billing', 'ui'], '--components')).toThrow(
      '--components: unknown components billing, ui (known: gate, credits, metering, governance, mcp, uplink)',
    );
  });

  it('refuses an empty list', () => {
    expect(() => componentFlags([], 'config.components')).toThrow(ConfigError);
  });
});

describe('backends per component (the deploy contract)', () => {
  const flags = (...list: Component[]) => componentFlags(list, 'test');

  it.each([
    [['gate'], true],
    [['credits'], true],
    [['governance'], true],
    [['mcp'], true],
    [['metering'], false],
    [['uplink'], true],
    [['metering', 'uplink'], true],
    [['metering', 'gate'], true],
  ] as [Component[], boolean][])('%j needs Redis: %s', (list, redis) => {
    expect(needsRedis(flags(...list))).toBe(redis);
    expect(needsPostgres(flags(...list))).toBe(true);
  });
});

describe('dataPlaneConfig', () => {
  it('fills the production defaults', () => {
    const config = dataPlaneConfig({ components: ['gate'] }, 'aws');
    expect(config).toMatchObject({
      name: 'allot',
      region: 'us-east-1',
      network: { mode: 'create', cidr: '10.40.0.0/16' },
      cluster: { mode: 'create', minNodes: 3, maxNodes: 6 },
      database: { highAvailability: true, backupRetentionDays: 7, iamAuthentication: false },
      deletionProtection: true,
      nats: { mode: 'in-cluster', storageGb: 10 },
      tenant: 'default',
      secretName: 'allot-secrets',
      chartPath: `${REPO_ROOT}/charts/allot`,
    });
    expect(dataPlaneConfig({ components: ['gate'] }, 'gcp').region).toBe('us-central1');
  });

  it('names the field of every mistake', () => {
    const cases: [unknown, string][] = [
      [{ components: ['gate'], nmae: 'x' }, 'config: unknown field nmae'],
      [{ components: ['gate'], name: 'Allot_1' }, 'config.name: "Allot_1" must be'],
      [
        { components: ['gate'], network: { cidr: '10.0.0.0/8' } },
        'config.network.cidr: 10.0.0.0/8 must be a /16 to a /20',
      ],
      [
        { components: ['gate'], network: { cidr: '10.0.0.1/16' } },
        'config.network.cidr: expected an IPv4 CIDR',
      ],
      [
        { components: ['gate'], database: { backupRetentionDays: 90 } },
        'backupRetentionDays: expected an integer from 1 to 35',
      ],
      [{ components: ['gate'], replicas: { uplink: 2 } }, 'config.replicas: unknown field uplink'],
      [
        { components: ['gate'], nats: { mode: 'external', url: 'http://x' } },
        'config.nats.url: expected a nats:// or tls:// URL',
      ],
      [{ components: ['uplink'] }, 'config.uplink: the uplink component needs the hub'],
      [{ components: ['uplink'], uplink: { url: 'tls://hub:443' } }, 'config.uplink.user: is required'],
      [
        { components: ['gate'], tenant: 'Acme Prod' },
        'config.tenant: "Acme Prod" must be 1-64 of a-z 0-9 _ -',
      ],
      [
        { components: ['gate'], cluster: { mode: 'existing', name: 'c' } },
        'config.network: an existing cluster lives in an existing network',
      ],
      [
        { components: ['gate'], network: { mode: 'existing', networkId: 'vpc-1', subnetIds: [] } },
        'give at least one subnet',
      ],
    ];
    for (const [input, message] of cases) {
      expect(() => dataPlaneConfig(input, 'aws'), JSON.stringify(input)).toThrow(message);
    }
  });

  it('reads the Redis mode: one primary by default, or a cluster of shards', () => {
    expect(dataPlaneConfig({ components: ['gate'] }, 'aws').redis).toEqual({
      mode: 'single',
      instanceType: undefined,
      memoryGb: 5,
      highAvailability: true,
    });
    expect(dataPlaneConfig({ components: ['gate'], redis: { mode: 'cluster' } }, 'gcp').redis).toEqual({
      mode: 'cluster',
      instanceType: undefined,
      shards: 3,
      replicasPerShard: 1,
      serviceConnectionPolicy: 'create',
    });
    const cases: [unknown, 'aws' | 'gcp', string][] = [
      [{ redis: { mode: 'sharded' } }, 'aws', 'config.redis.mode: expected "single" or "cluster"'],
      [{ redis: { mode: 'cluster', memoryGb: 5 } }, 'gcp', 'config.redis: unknown field memoryGb'],
      [{ redis: { shards: 3 } }, 'aws', 'config.redis: unknown field shards'],
      [
        { redis: { mode: 'cluster', replicasPerShard: 3 } },
        'gcp',
        'replicasPerShard: expected an integer from 0 to 2',
      ],
      [
        { redis: { mode: 'cluster', replicasPerShard: 6 } },
        'aws',
        'replicasPerShard: expected an integer from 0 to 5',
      ],
      [{ redis: { mode: 'cluster', shards: 0 } }, 'aws', 'config.redis.shards: expected an integer from 1'],
      [
        { redis: { mode: 'cluster', serviceConnectionPolicy: 'existing' } },
        'aws',
        'config.redis: unknown field serviceConnectionPolicy',
      ],
    ];
    for (const [input, cloud, message] of cases) {
      expect(() => dataPlaneConfig({ components: ['gate'], ...(input as object) }, cloud)).toThrow(message);
    }
  });

  it('takes the stream replicas of an external NATS, 1 unless told', () => {
    const nats = (input: object) => dataPlaneConfig({ components: ['gate'], nats: input }, 'aws').nats;
    expect(nats({ mode: 'external', url: 'nats://n:4222' })).toEqual({
      mode: 'external',
      url: 'nats://n:4222',
      replicas: 1,
    });
    expect(nats({ mode: 'external', url: 'nats://n:4222', replicas: 3 })).toMatchObject({ replicas: 3 });
    expect(() => nats({ mode: 'in-cluster', replicas: 3 })).toThrow('config.nats: unknown field replicas');
  });

  it('refuses mcp without the gate its tools call', () => {
    expect(() => dataPlaneConfig({ components: ['mcp', 'credits'] }, 'aws')).toThrow(
      'config.components: mcp calls the gate of its release; add gate',
    );
  });

  it('refuses tags that GCP cannot take as labels', () => {
    expect(() => dataPlaneConfig({ components: ['gate'], tags: { CostCenter: 'x' } }, 'gcp')).toThrow(
      'config.tags: "CostCenter" is not a GCP label',
    );
    expect(dataPlaneConfig({ components: ['gate'], tags: { CostCenter: 'x' } }, 'aws').tags).toEqual({
      CostCenter: 'x',
    });
  });

  it('resolves a relative chart path against the repository and keeps an absolute one', () => {
    expect(dataPlaneConfig({ components: ['gate'], chartPath: 'charts/other' }, 'aws').chartPath).toBe(
      `${REPO_ROOT}/charts/other`,
    );
    expect(dataPlaneConfig({ components: ['gate'], chartPath: '/opt/allot' }, 'aws').chartPath).toBe(
      '/opt/allot',
    );
  });
});

describe('controlPlaneConfig', () => {
  it('has its own name so it can share an account with a data plane', () => {
    expect(controlPlaneConfig({}, 'aws')).toMatchObject({
      name: 'allot-control',
      replicaCount: 2,
      hub: { allowedCidrs: ['0.0.0.0/0'], storageGb: 10 },
    });
  });

  it('refuses data-plane fields', () => {
    expect(() => controlPlaneConfig({ components: ['gate'] }, 'aws')).toThrow(
      'config: unknown field components',
    );
  });
});

describe('CIDR arithmetic', () => {
  it('splits like Terraform cidrsubnet', () => {
    expect(cidrSubnet('10.40.0.0/16', 3, 0)).toBe('10.40.0.0/19');
    expect(cidrSubnet('10.40.0.0/16', 3, 2)).toBe('10.40.64.0/19');
    expect(cidrSubnet('10.40.224.0/19', 5, 1)).toBe('10.40.225.0/24');
    expect(cidrSubnet('10.40.0.0/16', 1, 1)).toBe('10.40.128.0/17');
    expect(cidrSubnet('192.168.0.0/20', 4, 15)).toBe('192.168.15.0/24');
    expect(() => cidrSubnet('10.0.0.0/16', 2, 4)).toThrow(RangeError);
  });

  it('accepts only network addresses', () => {
    expect(isIpv4Cidr('10.0.0.0/16')).toBe(true);
    expect(isIpv4Cidr('0.0.0.0/0')).toBe(true);
    expect(isIpv4Cidr('10.0.0.1/16')).toBe(false);
    expect(isIpv4Cidr('256.0.0.0/8')).toBe(false);
    expect(isIpv4Cidr('10.0.0.0')).toBe(false);
  });
});

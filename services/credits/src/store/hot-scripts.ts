import type { HotScript } from '@allot/kit/hot';

/**
 * The credits hot path: one Lua script per operation, each atomic over the keys of one
 * customer (one hash tag, so it runs on Redis Cluster). Redis decides, exactly and per grant;
 * the engine appends what it decided to JetStream before answering, and the worker writes it
 * to the ledger.
 *
 * Keys of a pool operation (see `poolKeys`):
 *   1 loaded  customer marker: absent after Redis lost its state (or before the first load)
 *   2 pool    hash: mode, held (sum of active holds), od (soft-pool overdraft),
 *             m:<grant> = "<burnKey>|<effectiveMs>|<expiresMs or 0>", r:<grant> = remaining,
 *             x:<grant> = voided|expired and xa:<grant> = the amount it took away,
 *             tot/tfrom/tnext = a cache of the active grants' total (see cache_total)
 *   3 holds   hash: <hold> = "<amount>|<expiresMs>"
 *   4 holdsx  sorted set: <hold> by expiresMs
 *   5 done    hash: <hold> = JSON outcome of a finished hold (idempotent replays), kept 15 min;
 *             older retries are answered from PostgreSQL
 *   6 donex   sorted set: <hold> by finish time, to trim `done`
 *
 * Portability (Redis Lua 5.1 and the embedded 5.4 VM): every number sent back to Redis or
 * into JSON goes through fmt() ('%d'), never tostring or concatenation; negation is 0 - x;
 * amounts are integer micro-units below 2^53. Results are JSON strings with amounts as strings.
 */
const lib = `
local function fmt(n) return string.format('%d', n) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function hold_fields(v)
  local amount, exp = string.match(v, '^(%d+)|(%d+)$')
  return tonumber(amount), tonumber(exp)
end

-- A list that cjson encodes as [] even when empty is not portable, so lists travel as
-- {n = count, items = {...}} and the engine reads items only when n > 0.
local function list() return { n = 0, items = {} } end
local function push(l, v) l.n = l.n + 1; l.items[l.n] = v end

-- A list as JSON: the common empty case without cjson, which costs more than the rest of a
-- short script.
local function list_json(l)
  if l.n == 0 then return '{"n":0}' end
  return cjson.encode(l)
end

-- Holds past their TTL: removed, their amount returned, their outcome recorded.
local function sweep_holds(now)
  local out = list()
  local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', fmt(now), 'LIMIT', '0', '100')
  for _, id in ipairs(ids) do
    local v = redis.call('HGET', KEYS[3], id)
    if v then
      local amount, exp = hold_fields(v)
      redis.call('HDEL', KEYS[3], id)
      redis.call('HINCRBY', KEYS[2], 'held', fmt(0 - amount))
      -- What cjson.encode would give, built by hand (every value a formatted integer).
      redis.call('HSET', KEYS[5], id, '{"status":"expired","amount":"' .. fmt(amount) .. '","at":"' .. fmt(exp) .. '"}')
      redis.call('ZADD', KEYS[6], fmt(now), id)
      push(out, { holdId = id, amount = fmt(amount), at = fmt(exp) })
    end
    redis.call('ZREM', KEYS[4], id)
  end
  return out
end

local function trim_done(now)
  local old = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', fmt(now - 900000), 'LIMIT', '0', '50')
  for _, id in ipairs(old) do
    redis.call('HDEL', KEYS[5], id)
    redis.call('ZREM', KEYS[6], id)
  end
end

-- The pool as of now: active grants (effective, unexpired, remaining > 0) in burn order, and
-- \`next\`, the first time after now at which a grant becomes effective or expires (0: none).
local function read_pool(now)
  local flat = redis.call('HGETALL', KEYS[2])
  local pool = { held = 0, od = 0, mode = 'hard', grants = {}, total = 0, next = 0, empty = #flat == 0 }
  local remaining, meta = {}, {}
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    local kind, id = string.match(field, '^(%a):(.+)$')
    if kind == 'r' then remaining[id] = tonumber(value)
    elseif kind == 'm' then meta[id] = value
    elseif field == 'held' then pool.held = tonumber(value)
    elseif field == 'od' then pool.od = tonumber(value)
    elseif field == 'mode' then pool.mode = value end
  end
  local nxt = 0
  for id, m in pairs(meta) do
    local burn, eff, exp = string.match(m, '^([^|]*)|(%d+)|(%d+)$')
    local left = remaining[id] or 0
    eff = tonumber(eff)
    exp = tonumber(exp)
    if left > 0 then
      if eff <= now and (exp == 0 or now < exp) then
        pool.grants[#pool.grants + 1] = { id = id, burn = burn, remaining = left }
        pool.total = pool.total + left
      end
      if eff > now and (nxt == 0 or eff < nxt) then nxt = eff end
      if exp > now and (nxt == 0 or exp < nxt) then nxt = exp end
    end
  end
  pool.next = nxt
  table.sort(pool.grants, function(a, b) return a.burn < b.burn end)
  return pool
end

-- The cached sum of the active grants' remaining (tot), exact from tfrom until tnext (0:
-- forever): between those times no grant starts or ends, and every script that changes a
-- grant's remaining keeps it (settle) or drops it (add_grant, retire_grant).
local function cache_total(total, now, nxt)
  redis.call('HSET', KEYS[2], 'tot', fmt(total), 'tfrom', fmt(now), 'tnext', fmt(nxt))
end

-- What a new charge may take, and the pool's mode, from the cached total when it is valid.
local function free_and_mode(now)
  local f = redis.call('HMGET', KEYS[2], 'held', 'od', 'mode', 'tot', 'tfrom', 'tnext')
  local tot, from, nxt = tonumber(f[4]), tonumber(f[5]), tonumber(f[6])
  if tot and from and nxt and now >= from and (nxt == 0 or now < nxt) then
    return tot - (tonumber(f[1]) or 0) - (tonumber(f[2]) or 0), f[3] or 'hard'
  end
  local pool = read_pool(now)
  if not pool.empty then cache_total(pool.total, now, pool.next) end
  return pool.total - pool.held - pool.od, pool.mode
end

-- What a new charge may take without touching other holds.
local function free_of(pool) return pool.total - pool.held - pool.od end

local function finish(id, outcome, now)
  redis.call('HSET', KEYS[5], id, cjson.encode(outcome))
  redis.call('ZADD', KEYS[6], fmt(now), id)
end
`;

/**
 * The credit functions (reserve_core, settle, release, sweep_holds...) for scripts of other
 * services that decide over a credit pool too, as the gate's decision does. They read KEYS[1]
 * to KEYS[6] as `poolScriptKeys` orders them, so such a script passes those keys first.
 */
export function creditsLua(): string {
  return `${lib}\n${holdOps}`;
}

function script(name: string, body: string): HotScript {
  return { name: `credits.${name}`, lua: `${lib}\n${body}` };
}

/**
 * Reserve, settle and release, as functions over the pool's keys at one instant `now`; each
 * returns its reply as JSON. The holds past their TTL are swept once, by the caller (see
 * holdScript), before any of them runs.
 */
const holdOps = `
-- What a group of reserves and releases shares: the pool's free amount and mode, read once,
-- and the change to \`held\`, written once (flush_held). A settle reads the whole pool, so it
-- flushes first and the next reserve reads again.
local G = nil
local function group_pool(now)
  if not G then
    local free, mode = free_and_mode(now)
    G = { free = free, mode = mode, held = 0 }
  end
  return G
end
local function change_held(delta)
  if G then
    G.held = G.held + delta
    G.free = G.free - delta
  else
    redis.call('HINCRBY', KEYS[2], 'held', fmt(delta))
  end
end
local function flush_held()
  if G and G.held ~= 0 then redis.call('HINCRBY', KEYS[2], 'held', fmt(G.held)) end
  G = nil
end

-- A new hold of amount for ttl ms (or the earlier attempt of the same id again). fresh: the id
-- was just made up (random), so no earlier attempt or finished hold can have it. Returns the
-- status and its values: 'reserved', free, exp | 'exists', free, exp, amount |
-- 'insufficient', free | 'finished', outcome (JSON) | 'conflict', amount.
local function reserve_core(now, id, amount, ttl, fresh)
  local pinned = nil
  if not fresh then
    local done = redis.call('HGET', KEYS[5], id)
    if done then
      local d = cjson.decode(done)
      if d.status ~= 'undone' then return 'finished', done end
      -- An earlier attempt was undone because its publish failed, yet its event may be in the
      -- stream: a retry is that attempt again, same amount and (while it lasts) same expiry.
      if tonumber(d.amount) ~= amount then return 'conflict', tonumber(d.amount) end
      pinned = tonumber(d.expiresAt)
    end
  end
  local g = group_pool(now)
  if not fresh then
    local existing = redis.call('HGET', KEYS[3], id)
    if existing then
      local a, e = hold_fields(existing)
      return 'exists', g.free, e, a
    end
  end
  if g.mode ~= 'soft' and g.free < amount then return 'insufficient', g.free end
  local exp = now + ttl
  if pinned then
    if pinned > now then exp = pinned end
    redis.call('HDEL', KEYS[5], id)
    redis.call('ZREM', KEYS[6], id)
  end
  redis.call('HSET', KEYS[3], id, fmt(amount) .. '|' .. fmt(exp))
  redis.call('ZADD', KEYS[4], fmt(exp), id)
  change_held(amount)
  return 'reserved', g.free, exp
end

-- reserve_core's answer as the engine reads it (JSON built by hand: every value an integer).
local function reserve(now, id, amount, ttl, fresh)
  local status, a, b, c = reserve_core(now, id, amount, ttl, fresh)
  if status == 'reserved' then
    return '{"status":"reserved","available":"' .. fmt(a) .. '","expiresAt":"' .. fmt(b) .. '","at":"' .. fmt(now) .. '"}'
  elseif status == 'exists' then
    return '{"status":"exists","amount":"' .. fmt(c) .. '","expiresAt":"' .. fmt(b) .. '","available":"' .. fmt(a) .. '"}'
  elseif status == 'insufficient' then
    return '{"status":"insufficient","available":"' .. fmt(a) .. '"}'
  elseif status == 'finished' then
    return '{"status":"finished","outcome":' .. a .. '}'
  end
  return '{"status":"conflict","amount":"' .. fmt(a) .. '"}'
end

-- Takes from grants in burn order what the pool can give without touching other holds; the
-- rest is overage (hard pool) or overdraft (soft pool). A hold that expired first is settled
-- late, as a new charge with nothing held.
local function settle(now, id, requested)
  flush_held()
  local expired = list()
  local held, late, expiry = 0, false, nil
  local done = redis.call('HGET', KEYS[5], id)
  if done then
    local d = cjson.decode(done)
    if d.status == 'settled' then
      if d.expiry then push(expired, d.expiry) end
      return cjson.encode({ status = 'settled', outcome = d, replay = true, expired = expired })
    end
    if d.status == 'released' then return '{"status":"released_before"}' end
    if d.status == 'undone' then return '{"status":"not_found"}' end
    late = true
    -- The expiry's own event went out best effort and may be lost: it goes again with this
    -- settle (and its replays), under the same event id, so the ledger has the hold's release
    -- either way.
    expiry = { holdId = id, amount = d.amount, at = d.at }
    push(expired, expiry)
  else
    local v = redis.call('HGET', KEYS[3], id)
    if not v then return '{"status":"not_found"}' end
    held = hold_fields(v)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('HINCRBY', KEYS[2], 'held', fmt(0 - held))
  end
  local pool = read_pool(now)
  local free = free_of(pool)
  if free < 0 then free = 0 end
  local take = requested
  if take > free then take = free end
  local debits = list()
  local left = take
  for _, g in ipairs(pool.grants) do
    if left <= 0 then break end
    local slice = g.remaining
    if slice > left then slice = left end
    redis.call('HINCRBY', KEYS[2], 'r:' .. g.id, fmt(0 - slice))
    push(debits, { grantId = g.id, amount = fmt(slice) })
    left = left - slice
  end
  if not pool.empty then cache_total(pool.total - (take - left), now, pool.next) end
  local short = requested - take
  local overage, overdraft = 0, 0
  if pool.mode == 'soft' then
    overdraft = short
    if overdraft > 0 then redis.call('HINCRBY', KEYS[2], 'od', fmt(overdraft)) end
  else
    overage = short
  end
  local released = held - requested
  if released < 0 then released = 0 end
  local outcome = {
    status = 'settled', held = fmt(held), requested = fmt(requested), debits = debits,
    overdraft = fmt(overdraft), released = fmt(released), overage = fmt(overage), late = late, at = fmt(now),
    expiry = expiry,
  }
  -- Encoded once: stored for replays and sent back inside the reply.
  local encoded = cjson.encode(outcome)
  redis.call('HSET', KEYS[5], id, encoded)
  redis.call('ZADD', KEYS[6], fmt(now), id)
  return '{"status":"settled","outcome":' .. encoded .. ',"available":"' .. fmt(free - take - overdraft)
    .. '","expired":' .. list_json(expired) .. '}'
end

-- Returns the whole hold to the pool. An undo (the reserve could not be made durable) leaves
-- only an 'undone' mark with the amount and expiry: a publish that failed may still have
-- reached the stream (an acknowledgement lost or late), and the ledger then knows the hold by
-- them, so a retry of that reserve gets the same amount (another is an idempotency conflict)
-- and, while it lasts, the same expiry. To settle and release, an undone hold does not exist.
local function release(now, id, undo)
  local done = redis.call('HGET', KEYS[5], id)
  if done then
    local d = cjson.decode(done)
    if d.status == 'undone' then return '{"status":"not_found"}' end
    return cjson.encode({ status = d.status, outcome = d, replay = true })
  end
  local v = redis.call('HGET', KEYS[3], id)
  if not v then return '{"status":"not_found"}' end
  local amount, exp = hold_fields(v)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  change_held(0 - amount)
  -- The outcome and reply cjson.encode would give, built by hand (every value a formatted integer).
  local outcome = '{"status":"released","amount":"' .. fmt(amount) .. '","at":"' .. fmt(now) .. '"}'
  if undo then
    finish(id, { status = 'undone', amount = fmt(amount), expiresAt = fmt(exp), at = fmt(now) }, now)
  else
    redis.call('HSET', KEYS[5], id, outcome)
    redis.call('ZADD', KEYS[6], fmt(now), id)
  end
  return '{"status":"released","outcome":' .. outcome .. '}'
end
`;

/**
 * Reserve, settle and release on one pool, any number of them in one call, applied in order
 * at one instant, each as if it ran alone: a group of them costs one round trip and one sweep
 * instead of one each (see CreditsEngine). ARGV: sweep ('1' sweeps expired holds first, '0'
 * for an undo, which must not), then four per operation: kind (r reserve, n reserve under a
 * hold id just made up at random, s settle, l release, u undo a reserve), holdId, and
 *   r, n: amount, ttlMs   s: requested amount, ''   l, u: '', ''
 * Reply: {"status":"ok","swept":<expired holds>,"replies":[<one per operation>]}, or
 * {"status":"not_loaded"} with nothing applied.
 */
export const holdScript = script(
  'holds',
  `${holdOps}
if redis.call('EXISTS', KEYS[1]) == 0 then return '{"status":"not_loaded"}' end
local now = now_ms()
local swept = list()
if ARGV[1] == '1' then swept = sweep_holds(now) end
-- Settles and releases trim finished holds, and a reserve that added some: \`done\` grows no
-- faster than it is trimmed.
local trim = swept.n > 0
for i = 2, #ARGV, 4 do
  local kind = ARGV[i]
  if kind == 's' or kind == 'l' then trim = true
  elseif kind ~= 'r' and kind ~= 'n' and kind ~= 'u' then
    return redis.error_reply('unknown hold operation ' .. tostring(kind))
  end
end
if trim then trim_done(now) end
local replies = {}
for i = 2, #ARGV, 4 do
  local kind, id = ARGV[i], ARGV[i + 1]
  local reply
  if kind == 'r' or kind == 'n' then reply = reserve(now, id, tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), kind == 'n')
  elseif kind == 's' then reply = settle(now, id, tonumber(ARGV[i + 2]))
  elseif kind == 'l' then reply = release(now, id, false)
  else reply = release(now, id, true) end
  replies[#replies + 1] = reply
end
flush_held()
return '{"status":"ok","swept":' .. list_json(swept) .. ',"replies":[' .. table.concat(replies, ',') .. ']}'
`,
);

/** ARGV: (none). Sweeps expired holds of one pool; the background sweeper's entry. */
export const sweepScript = script(
  'sweep',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ status = 'not_loaded' }) end
local now = now_ms()
local expired = sweep_holds(now)
trim_done(now)
return cjson.encode({ status = 'swept', expired = expired })
`,
);

/**
 * ARGV: grantId, amount, meta ("<burnKey>|<effectiveMs>|<expiresMs or 0>"), mode ('' keeps it).
 * Idempotent per grant id. A soft pool's overdraft is paid from the new grant first.
 */
export const addGrantScript = script(
  'add_grant',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ status = 'not_loaded' }) end
local id, amount, meta, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if mode ~= '' then redis.call('HSET', KEYS[2], 'mode', mode) end
if redis.call('HEXISTS', KEYS[2], 'm:' .. id) == 1 or redis.call('HEXISTS', KEYS[2], 'x:' .. id) == 1 then
  return cjson.encode({ status = 'exists', overdraftPaid = redis.call('HGET', KEYS[2], 'xo:' .. id) or '0' })
end
local od = tonumber(redis.call('HGET', KEYS[2], 'od') or '0')
local pay = od
if pay > amount then pay = amount end
-- A rebuild can load an overdraft below zero (a credit): nothing to pay, and the grant is whole.
if pay < 0 then pay = 0 end
redis.call('HSET', KEYS[2], 'm:' .. id, meta, 'r:' .. id, fmt(amount - pay))
redis.call('HDEL', KEYS[2], 'tot')
if pay > 0 then
  redis.call('HINCRBY', KEYS[2], 'od', fmt(0 - pay))
  redis.call('HSET', KEYS[2], 'xo:' .. id, fmt(pay))
end
return cjson.encode({ status = 'added', overdraftPaid = fmt(pay), at = fmt(now_ms()) })
`,
);

/** ARGV: grantId, 'voided' | 'expired'. Removes what is left of a grant; idempotent. */
export const retireGrantScript = script(
  'retire_grant',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ status = 'not_loaded' }) end
local id, kind = ARGV[1], ARGV[2]
local now = now_ms()
local gone = redis.call('HGET', KEYS[2], 'x:' .. id)
if gone then
  return cjson.encode({ status = gone, amount = redis.call('HGET', KEYS[2], 'xa:' .. id) or '0', replay = true })
end
local meta = redis.call('HGET', KEYS[2], 'm:' .. id)
if not meta then return cjson.encode({ status = 'not_found' }) end
if kind == 'expired' then
  local exp = tonumber(string.match(meta, '|(%d+)$'))
  if exp == 0 or exp > now then return cjson.encode({ status = 'not_due' }) end
end
local left = tonumber(redis.call('HGET', KEYS[2], 'r:' .. id) or '0')
redis.call('HDEL', KEYS[2], 'm:' .. id, 'r:' .. id, 'tot')
redis.call('HSET', KEYS[2], 'x:' .. id, kind, 'xa:' .. id, fmt(left))
return cjson.encode({ status = kind, amount = fmt(left), at = fmt(now) })
`,
);

/** ARGV: mode. */
export const setModeScript = script(
  'set_mode',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ status = 'not_loaded' }) end
redis.call('HSET', KEYS[2], 'mode', ARGV[1])
return cjson.encode({ status = 'ok' })
`,
);

/**
 * Rebuild of one customer from PostgreSQL. KEYS: loaded, done, donex, then pool, holds,
 * holdsx for each pool in ARGV[1]'s `pools`, in order. ARGV[1]: JSON state; ARGV[2]: epoch.
 * A no-op when another process loaded the customer first.
 */
export const loadCustomerScript: HotScript = {
  name: 'credits.load_customer',
  lua: `
local function fmt(n) return string.format('%d', n) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 'already_loaded' end
local state = cjson.decode(ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
for i, p in ipairs(state.pools) do
  local kp, kh, khx = KEYS[4 + (i - 1) * 3], KEYS[5 + (i - 1) * 3], KEYS[6 + (i - 1) * 3]
  redis.call('DEL', kp, kh, khx)
  redis.call('HSET', kp, 'mode', p.mode, 'held', p.held, 'od', p.od)
  for _, g in ipairs(p.grants) do redis.call('HSET', kp, 'm:' .. g.id, g.meta, 'r:' .. g.id, g.remaining) end
  for _, x in ipairs(p.retired) do redis.call('HSET', kp, 'x:' .. x.id, x.kind, 'xa:' .. x.id, x.amount) end
  for _, h in ipairs(p.holds) do
    redis.call('HSET', kh, h.id, h.amount .. '|' .. h.expiresAt)
    redis.call('ZADD', khx, h.expiresAt, h.id)
  end
end
for _, d in ipairs(state.done) do
  redis.call('HSET', KEYS[2], d.id, d.outcome)
  redis.call('ZADD', KEYS[3], d.at, d.id)
end
redis.call('SET', KEYS[1], ARGV[2])
return 'loaded'
`,
};

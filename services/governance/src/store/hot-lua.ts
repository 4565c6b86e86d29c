/**
 * Governance in the hot state: counters of budgets, rate, concurrency and entitlement limits,
 * and the reservations that hold on them. The gate's decision script runs these functions
 * beside the credit ones, in one atomic script over one customer's keys. They read:
 *
 *   KEYS[7]  loaded    marker: absent after Redis lost its state (or before the first load)
 *   KEYS[8]  counters  hash of every counter of the customer. A counter's fields are
 *                      <counter id> RS <field>: w (calendar window start), u (used in the window,
 *                      or in the live buckets of a rolling window), h (held by reservations),
 *                      lo and b<index> (a rolling window's lowest live bucket and its buckets)
 *   KEYS[9]  res       hash: reservation id -> JSON { p = parts, exp = expiry }
 *   KEYS[10] resx      sorted set: reservation id by expiry
 *   KEYS[11] done      hash: answers for replays: d:<decision key>, s:<reservation> (settled),
 *                      l:<reservation> (released), x:<reservation> (expired: its record, so a
 *                      late settle still charges the budgets); kept 15 minutes
 *   KEYS[12] donex     sorted set: done entries by time
 *
 * A part (one counter a reservation touched) is the array
 *   { cid, kind, amount, ws, rms, bms, metric, hard limit or -1 }
 * kind: b budget, e entitlement, r rate, c concurrency; ws: the calendar window start it was
 * counted in; rms/bms: a rolling window's length and bucket (0 for calendar); metric: c credits,
 * u units, q requests (what a settle adds to `used`).
 *
 * Portability rules as in the credits scripts: integers only, fmt() for every number sent back.
 */
export const governanceLua = `
local function fmt(n) return string.format('%d', n) end
local RS = '\\30'
local ONE = 1000000
local function cf(cid, field) return cid .. RS .. field end

-- A rolling counter: drops the buckets that left the window and returns what is left.
local function rolling_used(cid, now, rms, bms)
  local n = math.ceil(rms / bms)
  local first = math.floor(now / bms) - n + 1
  local f = redis.call('HMGET', KEYS[8], cf(cid, 'u'), cf(cid, 'lo'), cf(cid, 'h'))
  local u, lo, h = tonumber(f[1]) or 0, tonumber(f[2]), tonumber(f[3]) or 0
  if lo == nil or lo >= first then return u, h end
  -- Live buckets never lie further than n from lo, since every write evicts first.
  if first - 1 >= lo + n - 1 then
    local fields = {}
    for idx = lo, lo + n - 1 do fields[#fields + 1] = cf(cid, 'b' .. fmt(idx)) end
    redis.call('HDEL', KEYS[8], unpack(fields))
    u = 0
  else
    for idx = lo, first - 1 do
      local field = cf(cid, 'b' .. fmt(idx))
      local b = redis.call('HGET', KEYS[8], field)
      if b then
        u = u - tonumber(b)
        redis.call('HDEL', KEYS[8], field)
      end
    end
    if u < 0 then u = 0 end
  end
  redis.call('HSET', KEYS[8], cf(cid, 'u'), fmt(u), cf(cid, 'lo'), fmt(first))
  return u, h
end

-- A calendar counter in window ws: used there (0 if the counter is still on an older window)
-- and held (holds carry over a window change: they are still active).
local function calendar_used(cid, ws)
  local f = redis.call('HMGET', KEYS[8], cf(cid, 'w'), cf(cid, 'u'), cf(cid, 'h'))
  local u = 0
  if tonumber(f[1]) == ws then u = tonumber(f[2]) or 0 end
  return u, tonumber(f[3]) or 0
end

local function counter_used(cid, now, ws, rms, bms)
  if rms > 0 then return rolling_used(cid, now, rms, bms) end
  return calendar_used(cid, ws)
end

-- Adds to used; returns the window (calendar) or bucket (rolling) start it landed in, or nil
-- when the part's calendar window is over (the usage belongs to a window the hot state no
-- longer keeps; the ledger of usage still gets it).
local function add_used(cid, now, ws, rms, bms, amount, calendar_must_match)
  if rms > 0 then
    local cur = math.floor(now / bms)
    redis.call('HINCRBY', KEYS[8], cf(cid, 'b' .. fmt(cur)), fmt(amount))
    redis.call('HINCRBY', KEYS[8], cf(cid, 'u'), fmt(amount))
    if not redis.call('HGET', KEYS[8], cf(cid, 'lo')) then redis.call('HSET', KEYS[8], cf(cid, 'lo'), fmt(cur)) end
    return cur * bms
  end
  local w = tonumber(redis.call('HGET', KEYS[8], cf(cid, 'w')))
  if w == ws then
    redis.call('HINCRBY', KEYS[8], cf(cid, 'u'), fmt(amount))
  elseif calendar_must_match then
    return nil
  else
    redis.call('HSET', KEYS[8], cf(cid, 'w'), fmt(ws), cf(cid, 'u'), fmt(amount))
  end
  return ws
end

local function add_held(cid, delta)
  redis.call('HINCRBY', KEYS[8], cf(cid, 'h'), fmt(delta))
end

-- Gives back what a reservation holds on its counters (release, undo, expiry).
local function release_parts(parts)
  for _, p in ipairs(parts) do
    if p[2] == 'b' or p[2] == 'e' then add_held(p[1], 0 - p[3])
    elseif p[2] == 'c' then add_held(p[1], 0 - ONE) end
  end
end

local function gov_finish(key, value, now)
  redis.call('HSET', KEYS[11], key, value)
  redis.call('ZADD', KEYS[12], fmt(now), key)
end

-- Reservations past their expiry: their holds given back, their record kept (x:<id>) for a
-- late settle. Returns their ids.
local function sweep_reservations(now)
  local out = {}
  local ids = redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', fmt(now), 'LIMIT', '0', '100')
  for _, id in ipairs(ids) do
    local rec = redis.call('HGET', KEYS[9], id)
    if rec then
      release_parts(cjson.decode(rec).p)
      redis.call('HDEL', KEYS[9], id)
      gov_finish('x:' .. id, rec, now)
      out[#out + 1] = id
    end
    redis.call('ZREM', KEYS[10], id)
  end
  return out
end

local function gov_trim(now)
  local old = redis.call('ZRANGEBYSCORE', KEYS[12], '-inf', fmt(now - 900000), 'LIMIT', '0', '50')
  for _, key in ipairs(old) do
    redis.call('HDEL', KEYS[11], key)
    redis.call('ZREM', KEYS[12], key)
  end
end
`;

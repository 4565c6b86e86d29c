/**
 * The decision script: the whole waterfall's stateful part in one atomic Lua script over one
 * customer's keys, and the settle, release and undo of its reservations. Several operations of
 * one (customer, credit pool) run in one call (group commit), each as if alone.
 *
 * KEYS: 1-6 the credit pool (poolScriptKeys: loaded, pool, holds, holdsx, done, donex), then
 * 7-12 governance (see governanceLua: loaded, counters, res, resx, done, donex).
 *
 * ARGV[1]: '1' sweeps lapsed holds and reservations first ('0' for an undo). Then operations:
 *   d id key hash ttl credit fresh n units dims  [cid kind hard limit amount ws we rms bms metric part] x n
 *       decide: key '' (no idempotency key) or the decision key; hash: the request's digest;
 *       credit: '' (no credit layer) or the estimated cost; fresh '1': id just made up; units:
 *       the estimate in micro-units; dims: JSON kept for a settle that needs them, or null;
 *       part: the counter as the reservation keeps it, JSON-encoded by the caller
 *   s id units cost      settle: '' for either means "as reserved"
 *   l id                 release
 *   u id key             undo a decision whose events could not be stored
 * Reply: {"status":"ok","swept":<credit holds>,"expired":[reservation ids],"replies":[...]} or
 * {"status":"not_loaded","what":"credits"|"governance"} with nothing applied.
 */
import { creditsLua } from '@allot/credits';
import { governanceLua } from '@allot/governance';
import type { HotScript } from '@allot/kit/hot';

const decideLua = `
local function counters_json(states)
  local out = {}
  for i, s in ipairs(states) do out[i] = '[' .. fmt(s[1]) .. ',' .. fmt(s[2]) .. ']' end
  return '[' .. table.concat(out, ',') .. ']'
end

local function opt_amount(n)
  if n == nil then return 'null' end
  return '"' .. fmt(n) .. '"'
end

-- A calendar counter moves to window ws before a reservation holds on it, so its settle (in
-- the same window) finds it there.
local function enter_window(c)
  if c.rms > 0 then return end
  local w = tonumber(redis.call('HGET', KEYS[8], cf(c.cid, 'w')))
  if w ~= c.ws then redis.call('HSET', KEYS[8], cf(c.cid, 'w'), fmt(c.ws), cf(c.cid, 'u'), '0') end
end

-- How long until a full rolling rate counter has room for amount again (0: unknown).
local function rolling_retry(cid, now, rms, bms, need)
  local n = math.ceil(rms / bms)
  local first = math.floor(now / bms) - n + 1
  local freed = 0
  for idx = first, first + n - 1 do
    local b = tonumber(redis.call('HGET', KEYS[8], cf(cid, 'b' .. fmt(idx)))) or 0
    freed = freed + b
    if freed >= need then return (idx + n) * bms - now end
  end
  return 0
end

local function decide(now, id, key, hash, ttl, credit, fresh, counters, units, dims)
  if key ~= '' then
    local d = redis.call('HGET', KEYS[11], 'd:' .. key)
    if d then return '{"d":"replay","stored":' .. d .. '}' end
  end
  local states = {}
  local deny, by, retry = nil, 0, 0
  for i, c in ipairs(counters) do
    local used, held = counter_used(c.cid, now, c.ws, c.rms, c.bms)
    states[i] = { used, held }
    if not deny and c.hard then
      if c.kind == 'c' then
        if held + ONE > c.limit then deny = 'concurrency_limited' end
      elseif c.kind == 'r' then
        if used + c.amount > c.limit then
          deny = 'rate_limited'
          if c.amount <= c.limit then
            if c.rms > 0 then retry = rolling_retry(c.cid, now, c.rms, c.bms, used + c.amount - c.limit)
            else retry = c.we - now end
          end
        end
      elseif used + held + c.amount > c.limit then
        if c.kind == 'e' then deny = 'limit_exceeded' else deny = 'budget_exceeded' end
      end
      if deny then by = i end
    end
  end
  local avail, exp = nil, now + ttl
  if credit then
    if deny then
      avail = group_pool(now).free
    else
      local st, a, b = reserve_core(now, id, credit, ttl, fresh)
      if st == 'insufficient' then
        deny, by, avail = 'insufficient_credits', 0, a
      elseif st == 'reserved' or st == 'exists' then
        avail, exp = a, b
      else
        return '{"d":"conflict"}'
      end
    end
  end
  local reply
  if deny then
    reply = '{"d":"deny","r":"' .. deny .. '","by":' .. by .. ',"retry":' .. fmt(retry) .. ',"avail":' .. opt_amount(avail)
      .. ',"c":' .. counters_json(states) .. ',"at":' .. fmt(now) .. '}'
  else
    local parts = {}
    for i, c in ipairs(counters) do
      if c.kind == 'r' then
        add_used(c.cid, now, c.ws, c.rms, c.bms, c.amount, false)
      else
        enter_window(c)
        if c.kind == 'c' then add_held(c.cid, ONE) else add_held(c.cid, c.amount) end
      end
      parts[i] = c.part
    end
    local rec = '{"p":[' .. table.concat(parts, ',') .. '],"exp":' .. fmt(exp) .. ',"c":' .. (credit and '1' or '0')
      .. ',"u":' .. fmt(units) .. ',"k":' .. fmt(credit or 0) .. ',"d":' .. dims .. '}'
    redis.call('HSET', KEYS[9], id, rec)
    redis.call('ZADD', KEYS[10], fmt(exp), id)
    reply = '{"d":"allow","exp":' .. fmt(exp) .. ',"avail":' .. opt_amount(avail) .. ',"c":' .. counters_json(states)
      .. ',"at":' .. fmt(now) .. '}'
  end
  if key ~= '' then gov_finish('d:' .. key, '{"h":"' .. hash .. '","r":' .. reply .. '}', now) end
  return reply
end

local function settle_reservation(now, id, units, cost)
  local done = redis.call('HGET', KEYS[11], 's:' .. id)
  if done then return '{"s":"replay","stored":' .. done .. '}' end
  if redis.call('HEXISTS', KEYS[11], 'l:' .. id) == 1 then return '{"s":"released_before"}' end
  local late = false
  local rec = redis.call('HGET', KEYS[9], id)
  if not rec then
    rec = redis.call('HGET', KEYS[11], 'x:' .. id)
    if not rec then return '{"s":"not_found"}' end
    late = true
  end
  local r = cjson.decode(rec)
  if units == nil then units = r.u end
  if cost == nil then cost = r.k end
  local used = {}
  for _, p in ipairs(r.p) do
    if p[2] == 'b' or p[2] == 'e' then
      if not late then add_held(p[1], 0 - p[3]) end
      local actual = ONE
      if p[7] == 'c' then actual = cost elseif p[7] == 'u' then actual = units end
      -- A hard limit is never passed, not even by a settle above its hold: what does not fit
      -- is the budget's overage, recorded beside its usage (as a hard pool records overage).
      local counted = actual
      if p[8] and p[8] >= 0 then
        local u, h = counter_used(p[1], now, p[4], p[5], p[6])
        local room = p[8] - u - h
        if room < 0 then room = 0 end
        if counted > room then counted = room end
      end
      local at = add_used(p[1], now, p[4], p[5], p[6], counted, true)
      used[#used + 1] = '[' .. cjson.encode(p[1]) .. ',' .. fmt(counted) .. ',' .. fmt(at or p[4]) .. ',' .. fmt(p[5])
        .. ',' .. fmt(actual - counted) .. ']'
    elseif p[2] == 'c' and not late then
      add_held(p[1], 0 - ONE)
    end
  end
  local credit = 'null'
  if r.c == 1 then credit = settle(now, id, cost) end
  if not late then
    redis.call('HDEL', KEYS[9], id)
    redis.call('ZREM', KEYS[10], id)
  end
  local out = '{"s":"settled","late":' .. (late and 'true' or 'false') .. ',"units":' .. fmt(units) .. ',"cost":' .. fmt(cost)
    .. ',"used":[' .. table.concat(used, ',') .. '],"credit":' .. credit .. ',"at":' .. fmt(now) .. '}'
  gov_finish('s:' .. id, out, now)
  return out
end

local function release_reservation(now, id, undo, key)
  if not undo then
    if redis.call('HEXISTS', KEYS[11], 's:' .. id) == 1 then return '{"s":"settled_before"}' end
    local done = redis.call('HGET', KEYS[11], 'l:' .. id)
    if done then return '{"s":"replay","stored":' .. done .. '}' end
  end
  local rec = redis.call('HGET', KEYS[9], id)
  if not rec then
    if redis.call('HEXISTS', KEYS[11], 'x:' .. id) == 1 then return '{"s":"expired"}' end
    return '{"s":"not_found"}'
  end
  local r = cjson.decode(rec)
  release_parts(r.p)
  redis.call('HDEL', KEYS[9], id)
  redis.call('ZREM', KEYS[10], id)
  local credit = 'null'
  if r.c == 1 then credit = release(now, id, undo) end
  local out = '{"s":"released","credit":' .. credit .. ',"at":' .. fmt(now) .. '}'
  if undo then
    if key ~= '' then
      redis.call('HDEL', KEYS[11], 'd:' .. key)
      redis.call('ZREM', KEYS[12], 'd:' .. key)
    end
  else
    gov_finish('l:' .. id, out, now)
  end
  return out
end
`;

const body = `
if redis.call('EXISTS', KEYS[1]) == 0 then return '{"status":"not_loaded","what":"credits"}' end
if redis.call('EXISTS', KEYS[7]) == 0 then return '{"status":"not_loaded","what":"governance"}' end
-- Every operation is read before any is applied: a malformed one refuses the whole call.
local ops = {}
local i = 2
while i <= #ARGV do
  local kind = ARGV[i]
  local op = { kind = kind, id = ARGV[i + 1] }
  if kind == 'd' then
    local n = tonumber(ARGV[i + 7])
    if not n then return redis.error_reply('decide: bad counter count') end
    op.key, op.hash, op.ttl, op.fresh = ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 6] == '1'
    if ARGV[i + 5] ~= '' then op.credit = tonumber(ARGV[i + 5]) end
    op.units, op.dims = tonumber(ARGV[i + 8]), ARGV[i + 9]
    op.counters = {}
    local at = i + 10
    for j = 1, n do
      op.counters[j] = {
        cid = ARGV[at], kind = ARGV[at + 1], hard = ARGV[at + 2] == '1', limit = tonumber(ARGV[at + 3]),
        amount = tonumber(ARGV[at + 4]), ws = tonumber(ARGV[at + 5]), we = tonumber(ARGV[at + 6]),
        rms = tonumber(ARGV[at + 7]), bms = tonumber(ARGV[at + 8]), metric = ARGV[at + 9], part = ARGV[at + 10],
      }
      at = at + 11
    end
    i = at
  elseif kind == 's' then
    if ARGV[i + 2] ~= '' then op.units = tonumber(ARGV[i + 2]) end
    if ARGV[i + 3] ~= '' then op.cost = tonumber(ARGV[i + 3]) end
    i = i + 4
  elseif kind == 'l' then
    i = i + 2
  elseif kind == 'u' then
    op.key = ARGV[i + 2]
    i = i + 3
  else
    return redis.error_reply('unknown gate operation ' .. tostring(kind))
  end
  ops[#ops + 1] = op
end
local now = now_ms()
local swept, expired = list(), {}
if ARGV[1] == '1' then
  swept = sweep_holds(now)
  expired = sweep_reservations(now)
  trim_done(now)
  gov_trim(now)
end
local replies = {}
for j, op in ipairs(ops) do
  if op.kind == 'd' then
    replies[j] = decide(now, op.id, op.key, op.hash, op.ttl, op.credit, op.fresh, op.counters, op.units, op.dims)
  elseif op.kind == 's' then
    replies[j] = settle_reservation(now, op.id, op.units, op.cost)
  elseif op.kind == 'l' then
    replies[j] = release_reservation(now, op.id, false, '')
  else
    replies[j] = release_reservation(now, op.id, true, op.key)
  end
end
flush_held()
local ids = {}
for j, id in ipairs(expired) do ids[j] = '"' .. id .. '"' end
return '{"status":"ok","swept":' .. list_json(swept) .. ',"expired":[' .. table.concat(ids, ',') .. '],"replies":['
  .. table.concat(replies, ',') .. ']}'
`;

export const decideScript: HotScript = {
  name: 'gate.decide',
  lua: `${creditsLua()}\n${governanceLua}\n${decideLua}\n${body}`,
};

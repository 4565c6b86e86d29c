/**
 * Lua (5.4) run once in each embedded VM before any script: it builds the environment a
 * script sees on Redis 7.0 and nothing more.
 *
 * - `redis.call` / `redis.pcall` are JS functions reading the Lua stack directly (embedded.ts);
 *   `redis.call` raises the `{err = ...}` table, and `pcall` is replaced, as Redis 7.0 replaces
 *   it, so an error table it catches comes back as its string.
 * - Globals are read-only and reading an unknown global raises, with Redis's messages; library
 *   tables are read-only views. Only the 5.1-era library functions are visible (`unpack`,
 *   `math.pow`; no `table.unpack`, `utf8`, `string.pack`, `math.tointeger`, `os`, `io`, `load`).
 * - `tostring` prints floats as 5.1 does (`%.14g`, so `tostring(10/2)` is `5`), but `..` cannot
 *   be changed: `'x' .. 10/2` is `x5.0` here and `x5` on Redis (see script.ts).
 * - `cjson` follows lua-cjson's encoding rules (`%.14g` numbers, `\/` escaped, sparse-array and
 *   depth errors, `{}` for an empty table); decode errors carry lua-cjson's wording only roughly.
 * - The message handler finds the script's line the way Redis reports it (`on @user_script:N`).
 */
export const LUA_PRELUDE = String.raw`
local call, rpcall, sha1hex = __hot_call, __hot_pcall, __hot_sha1hex
local null, cfunction, expired = __hot_null, __hot_cfunction, __hot_expired
__hot_call, __hot_pcall, __hot_sha1hex, __hot_null, __hot_cfunction, __hot_expired = nil, nil, nil, nil, nil, nil

local error, type, tostring, tonumber, rawget, select = error, type, tostring, tonumber, rawget, select
local pairs, ipairs, next, setmetatable = pairs, ipairs, next, setmetatable
local raw_pcall, xpcall, load = pcall, xpcall, load
local getinfo = debug.getinfo
local unpack, concat, pack = table.unpack, table.concat, table.pack
local floor, huge, mathtype, tointeger = math.floor, math.huge, math.type, math.tointeger
local sformat, sbyte, schar, ssub, sfind, sgsub = string.format, string.byte, string.char, string.sub, string.find, string.gsub
local utf8char = utf8.char

local function readonly(t)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error('Attempt to modify a readonly table', 2) end,
    __metatable = false,
  })
end

local function copy(t, drop)
  local c = {}
  for k, v in pairs(t) do
    if not drop[k] then c[k] = v end
  end
  return c
end

-- tostring as Redis's Lua 5.1 prints: floats with %.14g (5.0 prints as 5), cjson.null as NULL.
local function tostring51(v)
  if v == null then return 'userdata: (nil)' end
  if mathtype(v) == 'float' then
    if v ~= v then return 'nan' end
    if v == huge then return 'inf' end
    if v == -huge then return '-inf' end
    return sformat('%.14g', v)
  end
  return tostring(v)
end

-- redis ---------------------------------------------------------------------------------------

local redis = {
  call = call, pcall = rpcall,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
}

function redis.error_reply(...)
  local message = ...
  if select('#', ...) ~= 1 or type(message) ~= 'string' then
    return { err = 'ERR wrong number or type of arguments' }
  end
  if ssub(message, 1, 1) == '-' then message = ssub(message, 2) end
  return { err = message }
end

function redis.status_reply(...)
  local message = ...
  if select('#', ...) ~= 1 or type(message) ~= 'string' then
    return { err = 'ERR wrong number or type of arguments' }
  end
  return { ok = message }
end

redis.sha1hex = cfunction(function(s)
  if type(s) ~= 'string' and type(s) ~= 'number' then
    error('wrong number of arguments', 3)
  end
  return sha1hex(tostring51(s))
end)

function redis.log() end

function redis.setresp(version)
  if version ~= 2 then error('the embedded hot state supports RESP2 replies only', 2) end
end

-- Redis 7.0 replaces pcall: an error table caught by it comes back as its 'err' string.
-- Neither pcall nor xpcall may swallow the time limit: past it, the error goes on up.
local function pcall(f, ...)
  local result = pack(raw_pcall(f, ...))
  if not result[1] then
    if expired() then error(result[2], 0) end
    if type(result[2]) == 'table' and type(rawget(result[2], 'err')) == 'string' then
      result[2] = rawget(result[2], 'err')
    end
  end
  return unpack(result, 1, result.n)
end

local function xpcall51(f, handler)
  local result = pack(xpcall(f, handler))
  if not result[1] and expired() then error(result[2], 0) end
  return unpack(result, 1, result.n)
end

-- cjson -----------------------------------------------------------------------------------------

local cjson = { null = null }

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for byte = 0, 31 do
  local c = schar(byte)
  if not escapes[c] then escapes[c] = sformat('\\u%04x', byte) end
end
escapes[schar(127)] = '\\u007f'

local function encode_string(s)
  return '"' .. sgsub(s, '[%c"\\/]', escapes) .. '"'
end

local function encode_number(n)
  if n ~= n or n == huge or n == -huge then
    error('Cannot serialise number: must not be NaN or Inf', 0)
  end
  return sformat('%.14g', n)
end

local encode_value

local function array_length(t)
  local max, items = 0, 0
  for k in pairs(t) do
    if type(k) == 'number' and k > 0 and floor(k) == k then
      if k > max then max = k end
      items = items + 1
    else
      return -1
    end
  end
  if max > 10 and max > items * 2 then
    error('Cannot serialise table: excessively sparse array', 0)
  end
  return max
end

local function encode_table(t, depth)
  if depth > 1000 then error('Cannot serialise, excessive nesting (' .. depth .. ')', 0) end
  local length = array_length(t)
  local parts = {}
  if length > 0 then
    for i = 1, length do parts[i] = encode_value(t[i], depth) end
    return '[' .. concat(parts, ',') .. ']'
  end
  for k, v in pairs(t) do
    local key
    if type(k) == 'string' then key = encode_string(k)
    elseif type(k) == 'number' then key = '"' .. encode_number(k) .. '"'
    else error('Cannot serialise ' .. type(k) .. ': table key must be a number or string', 0) end
    parts[#parts + 1] = key .. ':' .. encode_value(v, depth)
  end
  return '{' .. concat(parts, ',') .. '}'
end

encode_value = function(v, depth)
  local t = type(v)
  if t == 'string' then return encode_string(v)
  elseif t == 'number' then return encode_number(v)
  elseif t == 'boolean' then return v and 'true' or 'false'
  elseif t == 'nil' or v == null then return 'null'
  elseif t == 'table' then return encode_table(v, depth + 1)
  end
  error('Cannot serialise ' .. t .. ': type not supported', 0)
end

-- Level 3: past this function and its C trampoline, to the script's line, as Redis reports it.
cjson.encode = cfunction(function(...)
  if select('#', ...) ~= 1 then error('bad argument #1 to \'encode\' (expected 1 argument)', 3) end
  local ok, result = raw_pcall(encode_value, (...), 0)
  if not ok then error(result, 3) end
  return result
end)

local decode_value

local function decode_error(text, at, what)
  error(sformat('Expected %s but found %s at character %d', what,
    at > #text and 'T_END' or 'invalid token', at), 0)
end

local function skip_space(text, at)
  local _, stop = sfind(text, '^[ \t\r\n]*', at)
  return stop + 1
end

local function decode_string(text, at)
  local parts, i = {}, at + 1
  while true do
    local c = ssub(text, i, i)
    if c == '' then decode_error(text, i, 'string end') end
    if c == '"' then return concat(parts), i + 1 end
    if c == '\\' then
      local e = ssub(text, i + 1, i + 1)
      local simple = ({ b = '\b', f = '\f', n = '\n', r = '\r', t = '\t', ['"'] = '"', ['\\'] = '\\', ['/'] = '/' })[e]
      if simple then
        parts[#parts + 1] = simple
        i = i + 2
      elseif e == 'u' then
        local code = tonumber(ssub(text, i + 2, i + 5), 16)
        if not code then decode_error(text, i, 'unicode escape') end
        i = i + 6
        if code >= 0xD800 and code <= 0xDBFF and ssub(text, i, i + 1) == '\\u' then
          local low = tonumber(ssub(text, i + 2, i + 5), 16)
          if low and low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            i = i + 6
          end
        end
        parts[#parts + 1] = utf8char(code)
      else
        decode_error(text, i, 'escape')
      end
    else
      parts[#parts + 1] = c
      i = i + 1
    end
  end
end

decode_value = function(text, at, depth)
  if depth > 1000 then error('Found too many nested data structures (' .. depth .. ') at character ' .. at, 0) end
  at = skip_space(text, at)
  local c = ssub(text, at, at)
  if c == '{' then
    local object = {}
    at = skip_space(text, at + 1)
    if ssub(text, at, at) == '}' then return object, at + 1 end
    while true do
      if ssub(text, at, at) ~= '"' then decode_error(text, at, 'object key string') end
      local key
      key, at = decode_string(text, at)
      at = skip_space(text, at)
      if ssub(text, at, at) ~= ':' then decode_error(text, at, 'colon') end
      object[key], at = decode_value(text, at + 1, depth + 1)
      at = skip_space(text, at)
      local sep = ssub(text, at, at)
      if sep == '}' then return object, at + 1 end
      if sep ~= ',' then decode_error(text, at, 'comma or object end') end
      at = skip_space(text, at + 1)
    end
  elseif c == '[' then
    local array, n = {}, 0
    at = skip_space(text, at + 1)
    if ssub(text, at, at) == ']' then return array, at + 1 end
    while true do
      n = n + 1
      array[n], at = decode_value(text, at, depth + 1)
      at = skip_space(text, at)
      local sep = ssub(text, at, at)
      if sep == ']' then return array, at + 1 end
      if sep ~= ',' then decode_error(text, at, 'comma or array end') end
      at = at + 1
    end
  elseif c == '"' then
    return decode_string(text, at)
  elseif ssub(text, at, at + 3) == 'true' then return true, at + 4
  elseif ssub(text, at, at + 4) == 'false' then return false, at + 5
  elseif ssub(text, at, at + 3) == 'null' then return null, at + 4
  end
  local _, stop = sfind(text, '^-?%d+%.?%d*[eE]?[-+]?%d*', at)
  if not stop then decode_error(text, at, 'value') end
  local n = tonumber(ssub(text, at, stop))
  if not n then decode_error(text, at, 'value') end
  -- Lua 5.1 numbers are doubles that print without '.0'; keep integral values integers.
  if mathtype(n) == 'float' and n == floor(n) and n > -2^53 and n < 2^53 then n = tointeger(n) end
  return n, stop + 1
end

cjson.decode = cfunction(function(...)
  local text = ...
  if select('#', ...) ~= 1 then error('bad argument #1 to \'decode\' (expected 1 argument)', 3) end
  if type(text) ~= 'string' then error('bad argument #1 to \'decode\' (string expected)', 3) end
  local ok, value, at = raw_pcall(decode_value, text, 1, 0)
  if ok then
    at = skip_space(text, at)
    if at <= #text then ok, value = false, sformat('Expected the end but found invalid token at character %d', at) end
  end
  if not ok then error(value, 3) end
  return value
end)

-- the script environment --------------------------------------------------------------------------

local math51 = copy(math, { tointeger = true, type = true, ult = true, maxinteger = true, mininteger = true })
math51.pow = function(x, y) return x ^ y end
math51.log10 = function(x) return math.log(x, 10) end
local string51 = copy(string, { pack = true, packsize = true, unpack = true })
local table51 = { concat = table.concat, insert = table.insert, remove = table.remove, sort = table.sort,
  getn = function(t) return #t end }

local library = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
  getmetatable = getmetatable, setmetatable = setmetatable,
  tonumber = tonumber, tostring = tostring51, type = type, unpack = unpack, xpcall = xpcall51,
  redis = readonly(redis), cjson = readonly(cjson),
  math = readonly(math51), string = readonly(string51), table = readonly(table51),
}

local current = { KEYS = {}, ARGV = {} }
local env = setmetatable({}, {
  __index = function(_, name)
    local v = current[name]
    if v == nil then v = library[name] end
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error('Attempt to modify a readonly table', 2) end,
  __metatable = false,
})
library._G = env

-- Where Redis says "on @user_script:N": the innermost frame of the script itself.
local function handler(err)
  local line
  local level = 2
  while true do
    local info = getinfo(level, 'Sl')
    if info == nil then break end
    if info.source == '@user_script' then
      line = info.currentline
      break
    end
    level = level + 1
  end
  local message
  if type(err) == 'table' then
    message = rawget(err, 'err')
    if type(message) ~= 'string' then
      message = "ERR a script raised an error table without a string 'err' field (this crashes Redis 7.0)"
    end
  else
    message = 'ERR ' .. tostring(err)
  end
  return { err = message, line = line }
end

local scripts = {}

function __hot_compile(sha, source)
  local fn, message = load(source, '@user_script', 't', env)
  if not fn then return message end
  scripts[sha] = fn
  return nil
end

function __hot_run(sha, keys, argv)
  current.KEYS, current.ARGV = keys, argv
  return xpcall(scripts[sha], handler)
end
`;

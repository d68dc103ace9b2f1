-- common.lua: helpers prepended to every script of this directory; never run on its own.
--
-- Every script is called with the same seven KEYS, which share the hash tag {svc}
-- so that a script touches one slot (Redis Cluster safe):
--   KEYS[1] <prefix>{svc}:members  ZSET  member id -> lease expiry, ms of server TIME
--   KEYS[2] <prefix>{svc}:info     HASH  member id -> '{"ttlMs":N,"joinSeq":N,...member record}'
--   KEYS[3] <prefix>{svc}:claims   HASH  shard -> '<owner id>|<token>'
--   KEYS[4] <prefix>{svc}:token    STRING fencing token counter
--   KEYS[5] <prefix>{svc}:seq      STRING join order counter
--   KEYS[6] <prefix>{svc}:rev      STRING revision counter
--   KEYS[7] <prefix>{svc}:meta     HASH  'shardCount', 'leaseTtlMs', 'createdAt' -> digits
-- ARGV[1] is the channel <prefix>{svc}:events; a script's own arguments start at ARGV[2].
--
-- Time comes from the server's TIME only: client clocks are never compared.
--
-- Every script that changes state calls commit() once at its end: the revision
-- goes up by exactly one and ONE message is published on the channel:
--   {"revision":"R","previous":"R-1","changes":[change, ...]}
-- with each change one of (every value a JSON string, so that no number is
-- rounded by a JSON encoder: tokens are ~1.7e15):
--   {"type":"member:put","id":"…","record":"<the stored record JSON, as a string>"}
--   {"type":"member:removed","id":"…"}               (its claims go with it)
--   {"type":"claim:put","shard":"k","owner":"…","token":"t"}
--   {"type":"claim:removed","shard":"k","token":"t"}
-- A script that found state it cannot express as changes (a claim written over
-- behind its owner's back) calls hint(): the message then carries no "changes",
-- which tells every listener to re-list.

-- Redis < 5 replicates scripts verbatim, which forbids writes after TIME; this
-- switches to effects replication there and is a no-op on Redis 7.
if redis.replicate_commands then redis.replicate_commands() end

local K_MEMBERS, K_INFO, K_CLAIMS, K_TOKEN, K_SEQ, K_REV, K_META =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local CHANNEL = ARGV[1]

-- Integers as plain digits: tostring() would print 1.7e+15 for large numbers.
local function digits(n)
  return string.format('%.0f', n)
end

local TIME = redis.call('TIME')
local NOW_MS = tonumber(TIME[1]) * 1000 + math.floor(tonumber(TIME[2]) / 1000)
-- Microseconds since the epoch as a digit string (< 2^53 until the year 2255).
local NOW_US = TIME[1] .. string.rep('0', 6 - #TIME[2]) .. TIME[2]

-- Garbage this call found and replaced: flat {key, reason, ...}. Scripts that
-- can report it return it, so each repair is reported once, by its repairer.
local REPAIRED = {}
local function note_repair(key, reason)
  REPAIRED[#REPAIRED + 1] = key
  REPAIRED[#REPAIRED + 1] = reason
end

-- A value for messages: quoted, at most 60 characters.
local function shown(value)
  local text = tostring(value)
  if #text > 60 then text = string.sub(text, 1, 60) .. '…' end
  return cjson.encode(text)
end

-- Digits that a JavaScript number holds exactly (the TypeScript side reads
-- counters as safe integers); the same rule as parsePositiveInteger in records.ts.
local MAX_SAFE = 9007199254740991
local function is_counter(value)
  return type(value) == 'string' and string.match(value, '^%d+$') ~= nil and #value <= 16
    and tonumber(value) < MAX_SAFE
end
local function is_positive_integer(value)
  return is_counter(value) and tonumber(value) > 0
end

-- The value of a counter key: its digits, false when absent, or (after
-- re-seeding it from server time, as after a data wipe) NOW_US when it held
-- garbage: a string that is not a safe integer, or a key of another type.
local function read_counter(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' and value.err then
    redis.call('DEL', key)
    note_repair(key, 'counter is not a string (' .. value.err .. '); re-seeded from server time')
  elseif value and not is_counter(value) then
    note_repair(key, 'counter ' .. shown(value) .. ' is not a safe integer; re-seeded from server time')
  else
    return value
  end
  redis.call('SET', key, NOW_US)
  return NOW_US
end

-- INCR that never restarts: a missing counter (a new service, or a Redis that
-- lost its data) starts at the server's microseconds since the epoch, which is
-- larger than any value handed out before unless the server clock went back.
local function next_value(key)
  if not read_counter(key) then redis.call('SET', key, NOW_US) end
  return redis.call('INCR', key)
end

-- Owner and token (digits) of a claim value, or nil when unparsable.
local function parse_claim(value)
  local owner, token = string.match(value, '^(.+)|(%d+)$')
  if owner == nil or not is_positive_integer(token) then return nil end
  return owner, token
end

local function is_live(id)
  return redis.call('ZSCORE', K_MEMBERS, id) ~= false
end

-- The changes of this call (JSON objects as text) and whether anything changed.
local CHANGES = {}
local DIRTY = false
local HINT = false
local REMOVED = {}

local function change(json)
  CHANGES[#CHANGES + 1] = json
  DIRTY = true
end

local function member_put(id, record)
  change('{"type":"member:put","id":' .. cjson.encode(id) .. ',"record":' .. cjson.encode(record) .. '}')
end

local function claim_put(shard, owner, token)
  change('{"type":"claim:put","shard":' .. cjson.encode(shard) .. ',"owner":' .. cjson.encode(owner)
    .. ',"token":"' .. token .. '"}')
end

local function claim_removed(shard, token)
  change('{"type":"claim:removed","shard":' .. cjson.encode(shard) .. ',"token":"' .. token .. '"}')
end

-- Remove a member's lease and record; announced as member:removed, which
-- implies its claims (call drop_orphan_claims after the last removal).
local function remove_member(id)
  redis.call('ZREM', K_MEMBERS, id)
  redis.call('HDEL', K_INFO, id)
  REMOVED[id] = true
  change('{"type":"member:removed","id":' .. cjson.encode(id) .. '}')
end

-- Delete every parsable claim whose owner is not a member any more. Claims of
-- members removed by this call are covered by their member:removed; any other
-- orphan is announced on its own. Unparsable claims stay, so that snapshots
-- report them (a claim overwrites them).
local function drop_orphan_claims()
  local all = redis.call('HGETALL', K_CLAIMS)
  for i = 1, #all, 2 do
    local owner, token = parse_claim(all[i + 1])
    if owner ~= nil and not is_live(owner) then
      redis.call('HDEL', K_CLAIMS, all[i])
      if not REMOVED[owner] then claim_removed(all[i], token) end
    end
  end
end

-- Remove members whose lease expired (expiry <= now) with their records and
-- claims. Returns true when something was removed.
local function reap()
  local dead = redis.call('ZRANGEBYSCORE', K_MEMBERS, '-inf', digits(NOW_MS))
  if #dead == 0 then return false end
  for _, id in ipairs(dead) do remove_member(id) end
  drop_orphan_claims()
  return true
end

-- The revision as digits, '0' when the service has none yet.
local function current_revision()
  return read_counter(K_REV) or '0'
end

-- Make this call's message a hint to re-list (see the top of this file).
local function hint()
  HINT = true
  DIRTY = true
end

-- Call once, at the end of every script: if anything changed, bump the
-- revision by one and publish the changes (or, after hint(), none: re-list).
-- Returns the revision after the call.
local function commit()
  if not DIRTY then return current_revision() end
  local rev = next_value(K_REV)
  local head = '{"revision":"' .. digits(rev) .. '","previous":"' .. digits(rev - 1) .. '"'
  if HINT then
    redis.call('PUBLISH', CHANNEL, head .. '}')
  else
    redis.call('PUBLISH', CHANNEL, head .. ',"changes":[' .. table.concat(CHANGES, ',') .. ']}')
  end
  return digits(rev)
end

-- ms until the earliest lease expires, skipping member `except`; false when none.
local function next_expiry(except)
  local first = redis.call('ZRANGE', K_MEMBERS, 0, 1, 'WITHSCORES')
  for i = 1, #first, 2 do
    if first[i] ~= except then return digits(math.max(0, tonumber(first[i + 1]) - NOW_MS)) end
  end
  return false
end

-- ---------------------------------------------------------------------------

-- common.lua: helpers prepended to every script of this directory; never run on its own.
--
-- Every script is called with the same seven KEYS, which share the hash tag {svc}
-- so that a script touches one slot (Redis Cluster safe):
--   KEYS[1] <prefix>{svc}:members  ZSET  member id -> lease expiry, ms of server TIME
--   KEYS[2] <prefix>{svc}:info     HASH  member id -> '{"ttlMs":N,"joinSeq":N,...MemberInfo}'
--   KEYS[3] <prefix>{svc}:claims   HASH  shard -> '<owner id>|<token>'
--   KEYS[4] <prefix>{svc}:token    STRING fencing token counter
--   KEYS[5] <prefix>{svc}:seq      STRING join order counter
--   KEYS[6] <prefix>{svc}:rev      STRING revision counter
--   KEYS[7] <prefix>{svc}:meta     HASH  'shardCount' -> N
-- ARGV[1] is the channel <prefix>{svc}:events; a script's own arguments start at ARGV[2].
--
-- Time comes from the server's TIME only: client clocks are never compared.

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

-- INCR that never restarts: a missing counter (a new service, or a Redis that
-- lost its data) starts at the server's microseconds since the epoch, which is
-- larger than any value handed out before unless the server clock went back.
local function next_value(key)
  redis.call('SET', key, NOW_US, 'NX')
  return redis.call('INCR', key)
end

-- Owner and token (as digits) of a claim value, or nil when unparsable.
local function parse_claim(value)
  return string.match(value, '^(.*)|(%d+)$')
end

local function is_live(id)
  return redis.call('ZSCORE', K_MEMBERS, id) ~= false
end

-- Delete every parsable claim whose owner is not a member any more.
-- Unparsable claims stay, so that snapshots report them.
local function drop_orphan_claims()
  local all = redis.call('HGETALL', K_CLAIMS)
  for i = 1, #all, 2 do
    local owner = parse_claim(all[i + 1])
    if owner ~= nil and not is_live(owner) then redis.call('HDEL', K_CLAIMS, all[i]) end
  end
end

-- Remove members whose lease expired (expiry <= now) with their info and
-- claims. Returns true when something was removed.
local function reap()
  local dead = redis.call('ZRANGEBYSCORE', K_MEMBERS, '-inf', digits(NOW_MS))
  if #dead == 0 then return false end
  for _, id in ipairs(dead) do
    redis.call('ZREM', K_MEMBERS, id)
    redis.call('HDEL', K_INFO, id)
  end
  drop_orphan_claims()
  return true
end

-- Bump the revision and announce it. Call once per script, only after a change.
local function changed()
  local rev = next_value(K_REV)
  redis.call('PUBLISH', CHANNEL, digits(rev))
end

-- ---------------------------------------------------------------------------

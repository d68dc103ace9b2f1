-- renew.lua: extend a live member's lease by its TTL, measured from server TIME now.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id
-- Reply: 1 when renewed, 0 when the member is gone (expired, revoked or never
--        registered; it is never resurrected) or its record lost its TTL
--
-- Expired members are reaped first, so a heartbeat that arrives late (after the
-- lease ran out) fails even if nobody reaped in between.

local reaped = reap()
local id = ARGV[2]
local renewed = 0
if is_live(id) then
  local info = redis.call('HGET', K_INFO, id)
  local ttl = info and tonumber(string.match(info, '^{"ttlMs":(%d+),'))
  if ttl then
    redis.call('ZADD', K_MEMBERS, 'XX', digits(NOW_MS + ttl), id)
    renewed = 1
  end
end
-- A renewal changes no visible state, so only a reap is announced.
if reaped then changed() end
return renewed

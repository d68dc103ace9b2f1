-- renew.lua: extend a live member's lease by its TTL, measured from server TIME now.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id
-- Reply: {renewed, revision, otherExpiryMs} where
--        renewed       1 when renewed, 0 when the member is gone (expired, revoked
--                      or never registered; it is never resurrected) or its
--                      record lost its TTL
--        revision      digits, the revision after this call ('0' when none yet)
--        otherExpiryMs digits, ms until the earliest lease of another member
--                      expires, or nil when there is no other member
--
-- Expired members are reaped first, so a heartbeat that arrives late (after the
-- lease ran out) fails even if nobody reaped in between. The revision and the
-- next expiry let a connection that heartbeats and watches the service skip
-- its poll: it compares the revision with the messages it saw, and arms its
-- expiry timer from otherExpiryMs.

reap()
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
local revision = commit()
return { renewed, revision, next_expiry(id) }

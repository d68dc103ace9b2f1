-- renew.lua: extend a live member's lease by its TTL, measured from server TIME now,
-- and check that the claims it holds are still its own.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3..] pairs of shard (digits), token (digits):
--        the claims the member acts on (none: nothing to check)
-- Reply: {renewed, revision, otherExpiryMs, lost} where
--        renewed       1 when renewed, 0 when the member is gone (expired, revoked
--                      or never registered; it is never resurrected) or its
--                      record lost its TTL
--        revision      digits, the revision after this call ('0' when none yet)
--        otherExpiryMs digits, ms until the earliest lease of another member
--                      expires, or nil when there is no other member
--        lost          flat {shard, token, ...} of the pairs whose claim is not
--                      '<member id>|<token>' any more (empty when not renewed)
--
-- Expired members are reaped first, so a heartbeat that arrives late (after the
-- lease ran out) fails even if nobody reaped in between. The revision and the
-- next expiry let a connection that heartbeats and watches the service skip
-- its poll: it compares the revision with the messages it saw, and arms its
-- expiry timer from otherExpiryMs.
--
-- A claim written over behind its owner's back (HSET by hand, another tool)
-- changes no revision and publishes nothing, so neither a message nor a
-- version check would reveal it. This check costs one HGET per held claim; a
-- mismatch is also announced as a hint, since the claim may now name another
-- member that does not know it holds it: every watcher re-lists.

reap()
local id = ARGV[2]
local renewed = 0
local lost = {}
if is_live(id) then
  local info = redis.call('HGET', K_INFO, id)
  local ttl = info and tonumber(string.match(info, '^{"ttlMs":(%d+),'))
  if ttl then
    redis.call('ZADD', K_MEMBERS, 'XX', digits(NOW_MS + ttl), id)
    renewed = 1
    for i = 3, #ARGV - 1, 2 do
      if redis.call('HGET', K_CLAIMS, ARGV[i]) ~= id .. '|' .. ARGV[i + 1] then
        lost[#lost + 1] = ARGV[i]
        lost[#lost + 1] = ARGV[i + 1]
      end
    end
    if #lost > 0 then hint() end
  end
end
-- A renewal changes no visible state, so only a reap (or a mismatch) is announced.
local revision = commit()
return { renewed, revision, next_expiry(id), lost }

-- reap.lua: remove expired members and their claims; the cheap poll of watchers.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel
-- Reply: {revision, expiresInMs} where revision is digits ('0' when none yet)
--        and expiresInMs is the time until the earliest lease expires, or nil
--        when there are no members

if reap() then changed() end
local first = redis.call('ZRANGE', K_MEMBERS, 0, 0, 'WITHSCORES')
local next_expiry = false
if #first == 2 then next_expiry = digits(math.max(0, tonumber(first[2]) - NOW_MS)) end
return { redis.call('GET', K_REV) or '0', next_expiry }

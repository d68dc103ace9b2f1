-- reap.lua: remove expired members and their claims; the cheap poll of watchers and version().
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel
-- Reply: {revision, expiresInMs} where revision is digits ('0' when none yet)
--        and expiresInMs is the time until the earliest lease expires, or nil
--        when there are no members

reap()
local revision = commit()
return { revision, next_expiry(false) }

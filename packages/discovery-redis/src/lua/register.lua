-- register.lua: add a member with a lease of ttlMs and the next join order.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3] ttlMs (decimal),
--        [4] MemberInfo as a JSON object with at least one field
-- Reply: the member's join order (integer)
--
-- Registering an id that is already live replaces its record (new join order,
-- new lease) and keeps its claims, as the memory backend does.

local reaped = reap()
local id, ttl, json = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local seq = next_value(K_SEQ)
redis.call('ZADD', K_MEMBERS, digits(NOW_MS + ttl), id)
-- Splice instead of cjson: cjson would round numbers to 14 significant digits.
-- ttlMs comes first so renew.lua can read it with an anchored match.
redis.call('HSET', K_INFO, id, '{"ttlMs":' .. digits(ttl) .. ',"joinSeq":' .. digits(seq) .. ',' .. string.sub(json, 2))
changed()
return seq

-- register.lua: add a member with a lease of ttlMs and the next join order.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3] ttlMs (digits),
--        [4] the member record (encodeMemberRecord of @shardwork/core), a JSON
--        object with at least one field
-- Reply: the member's join order (integer)
--
-- Registering an id that is already live replaces its record (new join order,
-- new lease, not draining) and keeps its claims, as the memory backend does.
-- Announced as member:put with the record as stored.

reap()
local id, ttl, json = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local seq = next_value(K_SEQ)
redis.call('ZADD', K_MEMBERS, digits(NOW_MS + ttl), id)
-- Splice instead of cjson: cjson would round numbers to 14 significant digits.
-- ttlMs comes first so renew.lua can read it with an anchored match.
local record = '{"ttlMs":' .. digits(ttl) .. ',"joinSeq":' .. digits(seq) .. ',' .. string.sub(json, 2)
redis.call('HSET', K_INFO, id, record)
member_put(id, record)
commit()
return seq

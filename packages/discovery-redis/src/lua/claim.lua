-- claim.lua: create the claim of a shard for a live member unless a live claim exists.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3] shard (decimal)
-- Reply: {1, token}        claimed; token is a new fencing token (digits)
--        {0, owner, token} a live member holds the shard with that token
--        {-1}              the claiming member is not live
--
-- A claim value that cannot be parsed, or whose owner is gone, counts as free.

local reaped = reap()
local id, shard = ARGV[2], ARGV[3]
if not is_live(id) then
  if reaped then changed() end
  return { -1 }
end
local existing = redis.call('HGET', K_CLAIMS, shard)
if existing then
  local owner, token = parse_claim(existing)
  if owner ~= nil and is_live(owner) then
    if reaped then changed() end
    return { 0, owner, token }
  end
end
local token = digits(next_value(K_TOKEN))
redis.call('HSET', K_CLAIMS, shard, id .. '|' .. token)
changed()
return { 1, token }

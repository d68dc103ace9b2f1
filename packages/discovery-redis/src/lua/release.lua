-- release.lua: delete the claims of several shards, each if held by this owner with this token.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3..] pairs of shard (digits), token (digits)
-- Reply: one integer per pair, in order: 1 when deleted, 0 when the claim is
--        absent or held by another owner or token
--
-- Each release is announced as claim:removed; the batch is one revision and one message.

reap()
local id = ARGV[2]
local results = {}
for i = 3, #ARGV - 1, 2 do
  local shard, token = ARGV[i], ARGV[i + 1]
  local released = 0
  if redis.call('HGET', K_CLAIMS, shard) == id .. '|' .. token then
    redis.call('HDEL', K_CLAIMS, shard)
    claim_removed(shard, token)
    released = 1
  end
  results[#results + 1] = released
end
commit()
return results

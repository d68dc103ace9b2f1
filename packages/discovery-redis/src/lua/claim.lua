-- claim.lua: create the claims of several shards for a live member, each unless a live claim exists.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel, [2] member id, [3..] shards (digits)
-- Reply: {-1}                     the claiming member is not live (nothing claimed)
--        {1, results, repaired}   otherwise, where results has one entry per shard, in order:
--          {1, token}             claimed; token is a new fencing token (digits)
--          {0, owner, token}      a live member (maybe this one) holds the shard with that token
--        and repaired is a flat {key, reason, ...} of the garbage this call replaced
--        (a claim value that does not parse, a claim of a non-member, a counter that
--        is not a safe integer)
--
-- Each successful claim gets its own INCR of the token counter and is announced
-- as claim:put; the whole batch is one revision and one message.

reap()
local id = ARGV[2]
if not is_live(id) then
  commit()
  return { -1 }
end

local function claim(shard)
  local existing = redis.call('HGET', K_CLAIMS, shard)
  if existing then
    local owner, token = parse_claim(existing)
    if owner == nil then
      note_repair(K_CLAIMS .. '[' .. shard .. ']', 'claim ' .. shown(existing) .. ' is not "<owner>|<token>"; overwritten')
    elseif is_live(owner) then
      return { 0, owner, token }
    else
      note_repair(K_CLAIMS .. '[' .. shard .. ']', 'claim of ' .. shown(owner) .. ', which is not a member; overwritten')
    end
  end
  local token = digits(next_value(K_TOKEN))
  redis.call('HSET', K_CLAIMS, shard, id .. '|' .. token)
  claim_put(shard, id, token)
  return { 1, token }
end

local results = {}
for i = 3, #ARGV do results[#results + 1] = claim(ARGV[i]) end
commit()
return { 1, results, REPAIRED }

-- takeover.lua: a replica acquired a partition: store its fencing token and put
-- the jobs left running under an older token back to ready, at the front.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token
-- Reply: {'OK', epoch, {id, record JSON, …}} the jobs put back; {'STALE', current token}
--        when the partition already has a newer token; or a status of common.lua
--
-- The same token again (a retry whose first reply was lost, or the partition's
-- consumer restarting under the same claim) is accepted: nothing of this
-- owner runs before its takeover returns, so everything running goes back.

local epoch, status = check_queue()
if status then return status end
local p, token = ARGV[4], ARGV[5]
local current = redis.call('HGET', K_FENCE, p)
if current and tonumber(current) > tonumber(token) then return { 'STALE', current } end
redis.call('HSET', K_FENCE, p, token)
local running = redis.call('HGETALL', pk(p, 'run'))
local back = {}
for i = 1, #running, 2 do
  local id = running[i]
  if release_running(p, id, running[i + 1]) then
    back[#back + 1] = id
    back[#back + 1] = redis.call('HGET', K_JOBS, id) or ''
  end
end
redis.call('DEL', pk(p, 'idle'))
return { 'OK', epoch, back }

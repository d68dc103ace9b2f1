-- reclaim.lua: the owner of a partition lost the reply of a fetch (the jobs it
-- took may be marked running with nobody running them): every job marked
-- running in the partition that the owner does not name goes back to ready.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] n,
--        then the n ids the owner is running or still recording
-- Reply: {'OK', epoch, put back}; {'STALE'}; or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token = ARGV[4], ARGV[5]
if not fenced(p, token) then return { 'STALE' } end
local keep = {}
for j = 1, tonumber(ARGV[6]) do keep[ARGV[6 + j]] = true end
local running = redis.call('HGETALL', pk(p, 'run'))
local back = 0
for i = 1, #running, 2 do
  local id = running[i]
  if not keep[id] and release_running(p, id, running[i + 1]) then back = back + 1 end
end
return { 'OK', epoch, back }

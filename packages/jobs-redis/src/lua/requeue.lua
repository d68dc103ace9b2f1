-- requeue.lua: running attempts that were aborted (stop past its timeout, a
-- partition handed over) go back to the front of their ready lists; an ordered
-- job keeps the head of its line.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] n, then n ids
-- Reply: {'OK', epoch, put back}; {'STALE'}; or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token = ARGV[4], ARGV[5]
if not fenced(p, token) then return { 'STALE' } end
local back = 0
for j = 1, tonumber(ARGV[6]) do
  local id = ARGV[6 + j]
  local running = redis.call('HGET', pk(p, 'run'), id)
  if running and release_running(p, id, running) then back = back + 1 end
end
return { 'OK', epoch, back }

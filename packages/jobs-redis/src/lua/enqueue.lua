-- enqueue.lua: store a batch of jobs (perform, performAt, performIn, performMany).
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions (see common.lua), [4] n,
--        then n groups of 8: id, handler, partition, runAt (ms), unique key or '',
--        ordered 0/1, key or '', record JSON
-- Reply: {'OK', epoch, {r1, …, rn}}: ri is '' when stored, else the id of the
--        queued-or-running job that holds its unique key (nothing stored)
--        or a status reply of common.lua
--
-- Partitions whose owner found nothing to do get one wake-up message.

local epoch, status = check_queue()
if status then return status end
local n = tonumber(ARGV[4])
local results, woke = {}, {}
for j = 0, n - 1 do
  results[#results + 1] = enqueue_one(5 + j * 8, woke)
end
for p in pairs(woke) do wake(p) end
return { 'OK', epoch, results }

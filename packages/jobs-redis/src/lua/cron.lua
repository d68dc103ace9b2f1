-- cron.lua: the owner of a periodic job's partition enqueues its ticks; each
-- tick at most once, ever: only ticks newer than the newest one recorded.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] periodic name,
--        [7] skip to (ms, or ''): record this tick as done without a job (catch-up 'skip'),
--        [8] n, then n groups of 9: tick ms, then the 8 job fields of enqueue.lua
-- Reply: {'OK', epoch, {r1, …}}: ri is 'new' (enqueued), 'old' (tick already done)
--        or the unique holder's id; {'STALE'}; or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token, name = ARGV[4], ARGV[5], ARGV[6]
if not fenced(p, token) then return { 'STALE' } end
local last = tonumber(redis.call('HGET', K_CRON, name) or '-1')
if ARGV[7] ~= '' and tonumber(ARGV[7]) > last then last = tonumber(ARGV[7]) end
local results, items, slots, woke = {}, {}, {}, {}
for j = 0, tonumber(ARGV[8]) - 1 do
  local i = 9 + j * 9
  local tick = tonumber(ARGV[i])
  if tick <= last then
    results[#results + 1] = 'old'
  else
    last = tick
    items[#items + 1] = job_at(i + 1)
    results[#results + 1] = 'new'
    slots[#items] = #results
  end
end
for n, holder in ipairs(enqueue_batch(items, woke, 0)) do
  if holder ~= '' then results[slots[n]] = holder end
end
if last >= 0 then redis.call('HSET', K_CRON, name, digits(last)) end
for q in pairs(woke) do wake(q) end
return { 'OK', epoch, results }

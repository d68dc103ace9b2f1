-- complete.lua: attempts that succeeded: delete the jobs (keeping them with their
-- results per the retention), release their holds, answer their waiters. A job
-- cancelled while it ran ends cancelled instead: its completion is refused.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions and retention, [4] partition, [5] token, [6] n,
--        then n triples: job id, result JSON, failed attempts before this one
-- Reply: {'OK', epoch, {r1, …}}: ri is 1 when recorded (now, or by an earlier call
--        whose reply was lost: the record is gone while the token is still current,
--        and only the current owner can delete it), 0 when the job was not running
--        here any more (put back), 2 when it was cancelled instead; {'STALE'} when
--        the token is not the partition's (a zombie: nothing is recorded); or a
--        status of common.lua
--
-- One command per structure for the whole batch; only jobs that hold a unique
-- key or an ordered line (flag 'h') need their own.

local epoch, status = check_queue()
if status then return status end
local p, token = ARGV[4], ARGV[5]
if not fenced(p, token) then return { 'STALE' } end
local n = tonumber(ARGV[6])
local ids, outputs, failed = {}, {}, {}
for j = 1, n do
  ids[j] = ARGV[4 + 3 * j]
  outputs[j] = ARGV[5 + 3 * j]
  failed[j] = ARGV[6 + 3 * j]
end
local runs = redis.call('HMGET', pk(p, 'run'), unpack(ids))
local cancels = {}
if redis.call('EXISTS', K_CXL) == 1 then cancels = redis.call('HMGET', K_CXL, unpack(ids)) end
local results, done, running, counted, holders = {}, {}, {}, {}, {}
local outs, starts, empty, fails = {}, {}, {}, {}
for j = 1, n do
  local value = runs[j]
  if value and cancels[j] then
    end_cancelled(p, ids[j], value, cancels[j])
    results[j] = 2
  elseif value then
    local h, flags = parse_run(value)
    done[#done + 1] = ids[j]
    outs[#outs + 1] = outputs[j]
    fails[#fails + 1] = failed[j]
    starts[#starts + 1] = string.match(value, '^[^|]*|(%d+)|') or '0'
    empty[#empty + 1] = false
    running[h] = (running[h] or 0) + 1
    if string.find(flags, 'c', 1, true) then counted[h] = (counted[h] or 0) + 1 end
    if string.find(flags, 'h', 1, true) then holders[#holders + 1] = ids[j] end
    results[j] = 1
  else
    -- Recorded by a call whose reply was lost: gone, or kept as completed.
    local fin = redis.call('HGET', K_FIN, ids[j])
    if fin then
      results[j] = kept_state(fin) == 'completed' and 1 or 2
    else
      results[j] = redis.call('HEXISTS', K_JOBS, ids[j]) == 0 and 1 or 0
    end
  end
end
if #done > 0 then
  for _, id in ipairs(holders) do release_holds(p, id, meta_of(id)) end
  redis.call('HDEL', pk(p, 'run'), unpack(done))
  for h, k in pairs(running) do count('running', h, -k) end
  for h, k in pairs(counted) do conc_add(h, -k) end
  finish_jobs(done, 'completed', outs, empty, starts, fails, p)
  tally('c', #done)
end
return { 'OK', epoch, results }

-- job.lua: one job by id, in any state (getJob).
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions and retention, [4] id
-- Reply: {'OK', epoch, JSON or ''}: '' when the queue does not know the job, else
--        {state, rec, f: fails, e: error JSON, pr: progress JSON, st: start ms,
--        at: due ms, p: partition}; {'OK', epoch, '', fin, record} for a kept finished
--        job (its `fin` value, see common.lua); or a status of common.lua

local epoch, status = check_queue()
if status then return status end
local id = ARGV[4]
local fin = redis.call('HGET', K_FIN, id)
if fin then return { 'OK', epoch, '', fin, redis.call('HGET', K_JOBS, id) or '{}' } end
local rec = redis.call('HGET', K_JOBS, id)
if not rec then return { 'OK', epoch, '' } end
local out = {
  rec = rec,
  f = tonumber(redis.call('HGET', K_FAILS, id) or '0'),
  e = redis.call('HGET', K_ERR, id) or nil,
  pr = redis.call('HGET', K_PROG, id) or nil,
}
local dead = redis.call('ZSCORE', K_DEAD, id)
if dead then
  local meta = meta_of(id)
  out.state, out.at, out.p = 'dead', tonumber(dead), meta and meta.p
  return { 'OK', epoch, cjson.encode(out) }
end
local meta = meta_of(id)
local parts = partitions_of(meta)
for _, q in ipairs(parts) do
  local run = redis.call('HGET', pk(q, 'run'), id)
  if run then
    out.state, out.p = 'running', q
    out.st = tonumber(string.match(run, '^[^|]*|(%d+)|') or '0')
    return { 'OK', epoch, cjson.encode(out) }
  end
  local due = redis.call('ZSCORE', pk(q, 'due'), id)
  if due then
    out.state, out.p, out.at = (out.f > 0) and 'retrying' or 'scheduled', q, tonumber(due)
    return { 'OK', epoch, cjson.encode(out) }
  end
end
out.state = 'ready'
if #parts == 1 then out.p = parts[1] end
return { 'OK', epoch, cjson.encode(out) }

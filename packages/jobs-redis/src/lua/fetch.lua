-- fetch.lua: the owner of a partition takes up to `max` jobs to run: first
-- moves due jobs to ready, then draws handlers by priority (gocraft's weighted
-- sampling, seeded by the caller) among those with ready jobs, not paused and
-- under their cluster-wide maxConcurrency.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] max,
--        [7] seed (integer), [8] n handlers, then n groups of 3: name, priority, maxConcurrency (0 = none)
-- Reply: {'OK', epoch, jobs, missing, next due in ms (-1: none)}
--        jobs: flat {id, handler, record JSON, fails, …}; missing: ids that had no record (dropped)
--        or {'STALE'} / a status of common.lua

local epoch, status = check_queue()
if status then return status end
local p, token, max = ARGV[4], ARGV[5], tonumber(ARGV[6])
if not fenced(p, token) then return { 'STALE' } end

-- Due jobs become ready.
local due = redis.call('ZRANGEBYSCORE', pk(p, 'due'), '-inf', digits(NOW), 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', pk(p, 'due'), id)
  local meta = meta_of(id)
  local h = meta and meta.h or '?'
  count(redis.call('HEXISTS', K_FAILS, id) == 1 and 'retrying' or 'scheduled', h, -1)
  make_ready(p, id, h, meta and meta.k or '')
end

local seed = tonumber(ARGV[7]) % 2147483647
if seed <= 0 then seed = 1 end
local function random()
  seed = (seed * 16807) % 2147483647
  return seed / 2147483647
end

local handlers = {}
for j = 0, tonumber(ARGV[8]) - 1 do
  local name = ARGV[9 + j * 3]
  local h = { name = name, priority = tonumber(ARGV[10 + j * 3]), max = tonumber(ARGV[11 + j * 3]) }
  h.list = pk(p, 'r:' .. name)
  h.running = h.max > 0 and tonumber(redis.call('HGET', K_CONC, name) or '0') or 0
  h.open = redis.call('SISMEMBER', K_PAUSED, name) == 0 and redis.call('LLEN', h.list) > 0
  handlers[#handlers + 1] = h
end

local jobs, missing = {}, {}
local taken = 0
while taken < max do
  local total = 0
  for _, h in ipairs(handlers) do
    if h.open then
      if h.max > 0 and h.running >= h.max then
        h.open = false
        redis.call('SADD', B .. 'cw:' .. h.name, p)
      else
        total = total + h.priority
      end
    end
  end
  if total == 0 then break end
  local draw, chosen = random() * total, nil
  for _, h in ipairs(handlers) do
    if h.open then
      draw = draw - h.priority
      chosen = h
      if draw < 0 then break end
    end
  end
  local id = redis.call('LPOP', chosen.list)
  if not id then
    chosen.open = false
  else
    local record = redis.call('HGET', K_JOBS, id)
    count('ready', chosen.name, -1)
    if not record then
      missing[#missing + 1] = id
      redis.call('HDEL', K_META, id)
      redis.call('HDEL', K_FAILS, id)
    else
      redis.call('HSET', pk(p, 'run'), id, chosen.name .. '|' .. digits(NOW))
      redis.call('HINCRBY', K_CONC, chosen.name, 1)
      count('running', chosen.name, 1)
      chosen.running = chosen.running + 1
      jobs[#jobs + 1] = id
      jobs[#jobs + 1] = chosen.name
      jobs[#jobs + 1] = record
      jobs[#jobs + 1] = redis.call('HGET', K_FAILS, id) or '0'
      taken = taken + 1
    end
  end
end
if taken == 0 then redis.call('SET', pk(p, 'idle'), '1') end
local first = redis.call('ZRANGE', pk(p, 'due'), 0, 0, 'WITHSCORES')
local next_due = -1
if #first > 0 then next_due = math.max(0, tonumber(first[2]) - NOW) end
return { 'OK', epoch, jobs, missing, next_due }

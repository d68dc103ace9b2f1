-- fetch.lua: the owner of a partition takes up to `max` jobs to run: first
-- moves due jobs to ready, then draws how many to take of each handler by
-- priority (gocraft's weighted sampling, seeded by the caller) among those with
-- ready jobs, not paused and under their cluster-wide maxConcurrency.
-- KEYS:  [1] B..'jobs'
-- ARGV:  [1] B, [2] epoch, [3] partitions, [4] partition, [5] token, [6] max,
--        [7] seed (integer), [8] n handlers, then n groups of 3: name, priority, maxConcurrency (0 = none)
-- Reply: {'OK', epoch, jobs, missing, next due in ms (-1: none)}
--        jobs: flat {id, handler, record JSON, fails, …}; missing: ids that had no record (dropped)
--        or {'STALE'} / a status of common.lua
--
-- The draw is among groups: each handler's own ready list at the handler's
-- priority, and each list of jobs given a priority in `perform` at that
-- priority (a handler's maxConcurrency spans its groups). It decides the
-- counts first; then one LPOP, HMGET and HSET per group take the whole batch.

local epoch, status = check_queue()
if status then return status end
local p, token, max = ARGV[4], ARGV[5], tonumber(ARGV[6])
if not fenced(p, token) then return { 'STALE' } end

-- Due jobs become ready.
local due = redis.call('ZRANGEBYSCORE', pk(p, 'due'), '-inf', digits(NOW), 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('ZREM', pk(p, 'due'), unpack(due))
  for _, id in ipairs(due) do
    local meta = meta_of(id)
    local h = meta and meta.h or '?'
    count(redis.call('HEXISTS', K_FAILS, id) == 1 and 'retrying' or 'scheduled', h, -1)
    make_ready(p, id, h, meta and meta.k or '', prio_of(meta))
  end
end

local seed = tonumber(ARGV[7]) % 2147483647
if seed <= 0 then seed = 1 end
local function random()
  seed = (seed * 16807) % 2147483647
  return seed / 2147483647
end

local paused = {}
for _, name in ipairs(redis.call('SMEMBERS', K_PAUSED)) do paused[name] = true end
-- '*': the whole queue is paused (pauseQueue).
local all_paused = paused['*'] == true
local handlers, groups = {}, {}
-- `len`: the list's length when the caller read it already.
local function add_group(hd, list, weight, len)
  local left = (all_paused or paused[hd.name]) and 0 or (len or redis.call('LLEN', list))
  if left > 0 and hd.max > 0 and hd.running == nil then
    hd.running = tonumber(redis.call('HGET', K_CONC, hd.name) or '0')
  end
  groups[#groups + 1] = { hd = hd, list = list, weight = weight, left = left, take = 0 }
end
for j = 0, tonumber(ARGV[8]) - 1 do
  local name = ARGV[9 + j * 3]
  local hd = { name = name, priority = tonumber(ARGV[10 + j * 3]), max = tonumber(ARGV[11 + j * 3]), take = 0 }
  handlers[name] = hd
  add_group(hd, ready_list(p, name, ''), hd.priority)
end
-- Lists of jobs given a priority: an empty one is dropped from the set (only
-- scripts push to these lists, so it is registered again with its next job).
for _, member in ipairs(redis.call('SMEMBERS', pk(p, 'prio'))) do
  local name, r = string.match(member, '^(.*)|(%d+)$')
  local hd = name and handlers[name]
  if hd then
    local list = ready_list(p, name, r)
    local len = redis.call('LLEN', list)
    if len == 0 then
      redis.call('SREM', pk(p, 'prio'), member)
    else
      add_group(hd, list, tonumber(r), len)
    end
  end
end

-- How many of each group.
local taken = 0
while taken < max do
  local total = 0
  for _, g in ipairs(groups) do
    if g.left > 0 then
      local hd = g.hd
      if hd.max > 0 and hd.running + hd.take >= hd.max then
        g.left = 0
        redis.call('SADD', B .. 'cw:' .. hd.name, p)
      else
        total = total + g.weight
      end
    end
  end
  if total == 0 then break end
  local draw, chosen = random() * total, nil
  for _, g in ipairs(groups) do
    if g.left > 0 then
      draw = draw - g.weight
      chosen = g
      if draw < 0 then break end
    end
  end
  chosen.take = chosen.take + 1
  chosen.left = chosen.left - 1
  chosen.hd.take = chosen.hd.take + 1
  taken = taken + 1
end

local jobs, missing = {}, {}
local got = 0
for _, g in ipairs(groups) do
  local h = g.hd
  if g.take > 0 then
    local ids = redis.call('LPOP', g.list, g.take)
    if ids then
      local records = redis.call('HMGET', K_JOBS, unpack(ids))
      local fails = redis.call('HMGET', K_FAILS, unpack(ids))
      local metas = redis.call('HMGET', K_META, unpack(ids))
      local run = {}
      local flags = h.max > 0 and 'c' or ''
      for i, id in ipairs(ids) do
        if records[i] then
          run[#run + 1] = id
          run[#run + 1] = h.name .. '|' .. digits(NOW) .. '|' .. flags .. (has_holds(metas[i]) and 'h' or '')
          jobs[#jobs + 1] = id
          jobs[#jobs + 1] = h.name
          jobs[#jobs + 1] = records[i]
          jobs[#jobs + 1] = fails[i] or '0'
        else
          missing[#missing + 1] = id
          redis.call('HDEL', K_META, id)
          redis.call('HDEL', K_FAILS, id)
        end
      end
      count('ready', h.name, -#ids)
      local k = #run / 2
      if k > 0 then
        redis.call('HSET', pk(p, 'run'), unpack(run))
        count('running', h.name, k)
        if h.max > 0 then conc_add(h.name, k) end
        got = got + k
      end
    end
  end
end
if got == 0 and #missing == 0 then redis.call('SET', pk(p, 'idle'), '1') end
local first = redis.call('ZRANGE', pk(p, 'due'), 0, 0, 'WITHSCORES')
local next_due = -1
if #first > 0 then next_due = math.max(0, tonumber(first[2]) - NOW) end
return { 'OK', epoch, jobs, missing, next_due }

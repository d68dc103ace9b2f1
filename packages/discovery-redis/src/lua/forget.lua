-- forget.lua: remove every key of a service that has no live member.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel
-- Reply: {0, id, ...}   live members remain (draining ones included): nothing removed
--        {1, removed}   otherwise; removed is the number of keys deleted (0: none existed)
--
-- Expired members are reaped first. The token counter goes too: a service
-- started again seeds it from server time (see next_value), above every token
-- handed out before, as after a data loss. Watchers get a message without a
-- revision, a hint to re-list; they find the service gone (revision '0').

reap()
local live = redis.call('ZRANGE', K_MEMBERS, 0, -1)
if #live > 0 then
  commit()
  local reply = { 0 }
  for _, id in ipairs(live) do reply[#reply + 1] = id end
  return reply
end
local removed = redis.call('DEL', K_MEMBERS, K_INFO, K_CLAIMS, K_TOKEN, K_SEQ, K_REV, K_META)
-- Published even when nothing was there: a reap above may have removed the last members.
if removed > 0 or DIRTY then redis.call('PUBLISH', CHANNEL, '{"forgotten":true}') end
return { 1, removed }

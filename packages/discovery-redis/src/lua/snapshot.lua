-- snapshot.lua: reap expired members, then read the whole service at one revision.
-- KEYS:  the seven service keys (see common.lua)
-- ARGV:  [1] events channel
-- Reply: {revision, shardCount, members, claims, groupAgeMs, repaired} where
--        revision   digits, '0' when the service has no revision yet (nothing
--                   stored, e.g. never used or wiped: equal revisions, equal contents)
--        shardCount bulk string or nil
--        members    flat {id, expiresInMs, record JSON or nil, ...}
--        claims     flat {shard, value, ...} exactly as stored (parsed by the client)
--        groupAgeMs digits, ms since the group was created (server TIME), or nil
--        repaired   flat {key, reason, ...}: a revision counter that held garbage
--                   and was re-seeded by this call

reap()
local revision = commit()
local members = {}
local zset = redis.call('ZRANGE', K_MEMBERS, 0, -1, 'WITHSCORES')
for i = 1, #zset, 2 do
  local id = zset[i]
  members[#members + 1] = id
  members[#members + 1] = digits(math.max(0, tonumber(zset[i + 1]) - NOW_MS))
  members[#members + 1] = redis.call('HGET', K_INFO, id)
end
local created = tonumber(redis.call('HGET', K_META, 'createdAt'))
return {
  revision,
  redis.call('HGET', K_META, 'shardCount'),
  members,
  redis.call('HGETALL', K_CLAIMS),
  created and digits(math.max(0, NOW_MS - created)) or false,
  REPAIRED,
}

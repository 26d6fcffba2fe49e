-- Append one entry to a conversation: the only way entries are written.
--
-- KEYS[1]  conv:<id>     the conversation hash (last_offset, epoch)
-- KEYS[2]  entries:<id>  the stream; entry <offset> has the ID "<offset>-0"
-- KEYS[3]  cids:<id>     "<len(author)>:<author>:<cid>" -> offset
-- KEYS[4]  feed          zset: conversation ids by their place in the change feed
-- KEYS[5]  feed-seq      string: the feed's last place handed out (INCR)
-- ARGV[1]  the cid field, or "" for an entry without cid
-- ARGV[2]  a fresh epoch, used only if the history turns out to be lost
-- ARGV[3]  "1" to refuse a closed conversation, "" to write regardless
-- ARGV[4]  an agent id that must be among the conversation's agents, or ""
-- ARGV[5..] the entry's field/value pairs, as XADD takes them
--
-- Returns {"missing"}                         no such conversation
--         {"stranger", site}                  ARGV[4] is not one of its agents
--         {"closed"}                          closed, and ARGV[3] asked for open
--         {"duplicate", offset, fields}       the cid was used: the first entry
--         {"added", offset}                   stored at offset
--
-- Entries are never trimmed or deleted, so the stream holds exactly the
-- entries epoch_base + 1 .. last_offset (epoch_base, absent = 0, is where the
-- current epoch began).  When it does not (the stream was lost or replaced),
-- the history before this entry is gone: the conversation gets a new epoch
-- that begins here, and offsets go on after the highest one ever handed out,
-- never reused.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return {"missing"}
end

if ARGV[4] ~= "" then
  local conv = redis.call("HMGET", KEYS[1], "agents", "site_id")
  local member = false
  for _, id in ipairs(cjson.decode(conv[1] or "[]")) do
    if id == ARGV[4] then
      member = true
      break
    end
  end
  if not member then
    return {"stranger", conv[2]}
  end
end

if ARGV[1] ~= "" then
  local seen = redis.call("HGET", KEYS[3], ARGV[1])
  if seen then
    local id = seen .. "-0"
    local found = redis.call("XRANGE", KEYS[2], id, id)
    if #found > 0 then
      return {"duplicate", tonumber(seen), found[1][2]}
    end
    -- the entry went with a lost history: store the retry as a new entry
  end
end

if ARGV[3] == "1" and redis.call("HGET", KEYS[1], "state") == "closed" then
  return {"closed"}
end

local row = redis.call("HMGET", KEYS[1], "last_offset", "epoch_base")
local last = tonumber(row[1])
local base = tonumber(row[2]) or 0
local held = redis.call("XLEN", KEYS[2])
if held ~= last - base then
  local newest = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", 1)
  if #newest > 0 then
    local top = tonumber(string.match(newest[1][1], "^(%d+)"))
    if top > last then
      last = top
    end
  end
  redis.call("HSET", KEYS[1], "epoch", ARGV[2], "epoch_base", last - held)
end

local offset = last + 1
redis.call("XADD", KEYS[2], string.format("%d-0", offset), unpack(ARGV, 5))
redis.call("HSET", KEYS[1], "last_offset", offset)
if ARGV[1] ~= "" then
  redis.call("HSET", KEYS[3], ARGV[1], offset)
end
-- the conversation's new place in the change feed (chatserver/store/outbox.py)
redis.call("ZADD", KEYS[4], redis.call("INCR", KEYS[5]), string.match(KEYS[1], "([^:]+)$"))
return {"added", offset}

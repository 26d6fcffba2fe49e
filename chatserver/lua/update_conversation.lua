-- Change fields of a conversation and keep its indexes in step.
--
-- KEYS[1]  conv:<id>
-- ARGV[1]  the key prefix
-- ARGV[2]  new state, or "" to keep it
-- ARGV[3]  closed_at when closing, "" otherwise (used only with a new state)
-- ARGV[4]  agents as a JSON list, or "" to keep them
-- ARGV[5]  department: "keep", "clear" or "set"
-- ARGV[6]  the department for "set"
-- ARGV[7]  new queued_at, or "" to keep it
--
-- Returns {"missing"}, {"conflict", other} when reopening a conversation of a
-- visitor who has another open one, or {"ok", fields}.
--
-- Indexes: convs:<state>:<site> (scored by queued_at) and open:<visitor>.

local conv = KEYS[1]
if redis.call("EXISTS", conv) == 0 then
  return {"missing"}
end
local prefix = ARGV[1]
local row = redis.call("HMGET", conv, "id", "site_id", "visitor_id", "state", "queued_at")
local id, site, visitor, old_state, old_queued = row[1], row[2], row[3], row[4], row[5]
local state = old_state
if ARGV[2] ~= "" then
  state = ARGV[2]
end
local queued = old_queued
if ARGV[7] ~= "" then
  queued = ARGV[7]
end

local open_key = prefix .. "open:" .. visitor
local open = redis.call("GET", open_key)
if state ~= "closed" and open ~= id then
  if open then
    local other = redis.call("HGET", prefix .. "conv:" .. open, "state")
    if other and other ~= "closed" then
      return {"conflict", open}
    end
  end
  redis.call("SET", open_key, id)
elseif state == "closed" and open == id then
  redis.call("DEL", open_key)
end

if ARGV[2] ~= "" then
  redis.call("HSET", conv, "state", state)
  if ARGV[3] ~= "" then
    redis.call("HSET", conv, "closed_at", ARGV[3])
  else
    redis.call("HDEL", conv, "closed_at")
  end
end
if ARGV[4] ~= "" then
  redis.call("HSET", conv, "agents", ARGV[4])
end
if ARGV[5] == "set" then
  redis.call("HSET", conv, "department", ARGV[6])
elseif ARGV[5] == "clear" then
  redis.call("HDEL", conv, "department")
end
if state ~= old_state or queued ~= old_queued then
  redis.call("HSET", conv, "queued_at", queued)
  redis.call("ZREM", prefix .. "convs:" .. old_state .. ":" .. site, id)
  redis.call("ZADD", prefix .. "convs:" .. state .. ":" .. site, queued, id)
end
return {"ok", redis.call("HGETALL", conv)}

-- Raise a reader's read marker; it never moves back.
--
-- KEYS[1]  reads:<conv>   reader -> offset
-- ARGV[1]  the reader
-- ARGV[2]  the offset read up to
--
-- Returns the marker after the call.

local want = tonumber(ARGV[2])
local current = redis.call("HGET", KEYS[1], ARGV[1])
if current and tonumber(current) >= want then
  return tonumber(current)
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return want

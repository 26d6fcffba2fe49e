-- Reserve one login attempt on every key, or on none (LoginThrottle).
--
-- KEYS[1..n]  throttle:<key>   zset: slot -> Unix time of the attempt
-- ARGV[1]     limit: records a key may hold in the window
-- ARGV[2]     the window in milliseconds (the keys' expiry)
-- ARGV[3]     now (Unix time)
-- ARGV[4]     the start of the window: now - window (records at or before it are dropped)
-- ARGV[5]     the slot: the attempt's name
--
-- Returns {} after recording the slot at ARGV[3] on every key, or, when any
-- key already holds ``limit`` records in the window, records nothing and
-- returns the time of the oldest of the newest ``limit`` records of each
-- such key (the caller works out the wait).

local limit = tonumber(ARGV[1])
local blocking = {}
for _, key in ipairs(KEYS) do
  redis.call("ZREMRANGEBYSCORE", key, "-inf", ARGV[4])
  if redis.call("ZCARD", key) >= limit then
    local oldest = redis.call("ZREVRANGE", key, limit - 1, limit - 1, "WITHSCORES")
    table.insert(blocking, oldest[2])
  end
end
if #blocking > 0 then
  return blocking
end
for _, key in ipairs(KEYS) do
  redis.call("ZADD", key, ARGV[3], ARGV[5])
  redis.call("ZREMRANGEBYRANK", key, 0, -limit - 1)
  redis.call("PEXPIRE", key, ARGV[2])
end
return {}

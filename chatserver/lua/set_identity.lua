-- Set a visitor's shop identity; a verified one claims the site's index.
--
-- KEYS[1]  visitor:<id>
-- KEYS[2]  identity:<site>:<user id>  -> the visitor holding it
-- ARGV[1]  the visitor id
-- ARGV[2]  the user id
-- ARGV[3]  "1" when verified, "0" otherwise
--
-- Returns the visitor's fields, or an empty list when there is no such visitor.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return {}
end
redis.call("HSET", KEYS[1], "user_id", ARGV[2], "verified", ARGV[3])
if ARGV[3] == "1" then
  redis.call("SET", KEYS[2], ARGV[1], "NX")
end
return redis.call("HGETALL", KEYS[1])

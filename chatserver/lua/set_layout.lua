-- Raise the key layout's version KEYS[1] from ARGV[1] to ARGV[2] (migrations_redis).
-- Returns the version the key holds afterwards: ARGV[2], or the version another
-- process left (when it was not ARGV[1]); an absent key is version 0.
local found = redis.call('GET', KEYS[1])
if found == false then
    found = '0'
end
if found == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2])
    return ARGV[2]
end
return found

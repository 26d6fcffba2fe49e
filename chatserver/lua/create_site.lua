-- Create a site unless its public key is taken.
--
-- KEYS[1]  site-key:<key>  -> site id (the unique index of keys)
-- KEYS[2]  site:<id>
-- KEYS[3]  sites           the set of every site id
-- ARGV[1]  the site id
-- ARGV[2..] the site's field/value pairs
--
-- Returns 1 when created, 0 when the key is taken (nothing is written).

if not redis.call("SET", KEYS[1], ARGV[1], "NX") then
  return 0
end
redis.call("HSET", KEYS[2], unpack(ARGV, 2))
redis.call("SADD", KEYS[3], ARGV[1])
return 1

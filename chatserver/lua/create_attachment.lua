-- Record an uploaded file, index it as unposted and count its bytes.
--
-- KEYS[1]  attachment:<id>
-- KEYS[2]  unposted-attachments (zset: id scored by created_at)
-- KEYS[3]  counters:<site>:attachment-bytes
-- ARGV[1]  the attachment id
-- ARGV[2]  created_at
-- ARGV[3]  size in bytes
-- ARGV[4..] field/value pairs of the hash

redis.call("HSET", KEYS[1], unpack(ARGV, 4))
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[1])
redis.call("HINCRBY", KEYS[3], "unposted_bytes", ARGV[3])
redis.call("HINCRBY", KEYS[3], "total_bytes", ARGV[3])
return 1

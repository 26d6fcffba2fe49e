-- Record a page view of an existing visitor and count its visits.
--
-- KEYS[1]  the visitor hash (fields visits, last_view)
-- KEYS[2]  the visitor's page-view list, newest first
-- ARGV[1]  the view's ts (a float as a string)
-- ARGV[2]  the visit gap in seconds
-- ARGV[3]  how many views to keep
-- ARGV[4]  the view as JSON (without its visit number)
--
-- Returns the view's visit number, or 0 when there is no such visitor.

if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
local ts = tonumber(ARGV[1])
local visits = tonumber(redis.call("HGET", KEYS[1], "visits") or "0")
local last = redis.call("HGET", KEYS[1], "last_view")
if visits == 0 or not last or ts - tonumber(last) > tonumber(ARGV[2]) then
  visits = visits + 1
end
redis.call("HSET", KEYS[1], "visits", visits, "last_view", ARGV[1])
redis.call("LPUSH", KEYS[2], visits .. " " .. ARGV[4])
redis.call("LTRIM", KEYS[2], 0, tonumber(ARGV[3]) - 1)
return visits

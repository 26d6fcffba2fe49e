-- The outbox's writes (chatserver/store/redis/outbox.py), one script so that a
-- job, its key's order set and the due index always move together.
--
-- KEYS[1]  outbox-due      zset: the head (smallest seq pending) job of each key, by due_at
-- KEYS[2]  outbox-cursors  hash: cursor name -> integer
-- KEYS[3]  outbox-old      zset: done and failed job ids by updated_at
-- ARGV[1]  the operation: enqueue | claim | complete | retry | fail | resend | prune
-- ARGV[2]  the key prefix ("<prefix>"): job, key and site keys are derived from it
-- ARGV[3..] the operation's arguments (below)
--
-- Only the head of a key is in outbox-due, so jobs of one key run one at a
-- time in seq order; a claim moves the job's due_at to the lease's end.

local op, P = ARGV[1], ARGV[2]
local DUE, CURSORS, OLD = KEYS[1], KEYS[2], KEYS[3]

local function job_key(id) return P .. "outbox-job:" .. id end
local function order_key(key) return P .. "outbox-key:" .. key end

local function head(keyz)
  return redis.call("ZRANGE", keyz, 0, 0)[1]
end

-- After a change to keyz: its old head leaves the due index if it is no
-- longer the head, and the current head is in it at its due_at.
local function schedule(keyz, before)
  local now_head = head(keyz)
  if before and before ~= now_head then
    redis.call("ZREM", DUE, before)
  end
  if now_head then
    redis.call("ZADD", DUE, redis.call("HGET", job_key(now_head), "due_at"), now_head)
  end
end

if op == "enqueue" then
  -- ARGV[3] now, ARGV[4] jobs (JSON list), ARGV[5] cursors (JSON object)
  local t = ARGV[3]
  local added = 0
  for _, j in ipairs(cjson.decode(ARGV[4])) do
    local skip = false
    if type(j.cursor) == "string" then
      local v = redis.call("HGET", CURSORS, j.cursor)
      skip = v ~= false and tonumber(v) >= j.seq
    end
    local jk = job_key(j.id)
    if not skip and redis.call("EXISTS", jk) == 0 then
      local keyz = order_key(j.key)
      local before = head(keyz)
      redis.call("HSET", jk, "id", j.id, "site_id", j.site_id, "kind", j.kind, "key", j.key,
        "seq", j.seq_text, "payload", j.payload, "state", "pending", "attempts", "0",
        "due_at", t, "created_at", t, "updated_at", t, "last_error", "")
      redis.call("ZADD", keyz, j.seq_text, j.id)
      redis.call("ZADD", P .. "outbox-site:" .. j.site_id, t, j.id)
      schedule(keyz, before)
      added = added + 1
    end
  end
  for name, v in pairs(cjson.decode(ARGV[5])) do
    local old = redis.call("HGET", CURSORS, name)
    if not old or tonumber(old) < tonumber(v) then
      redis.call("HSET", CURSORS, name, v)
    end
  end
  return added
end

if op == "claim" then
  -- ARGV[3] now, ARGV[4] the lease's end, ARGV[5] limit
  local out = {}
  local ids = redis.call("ZRANGEBYSCORE", DUE, "-inf", ARGV[3], "LIMIT", 0, tonumber(ARGV[5]))
  for _, id in ipairs(ids) do
    redis.call("HSET", job_key(id), "due_at", ARGV[4])
    redis.call("ZADD", DUE, ARGV[4], id)
    out[#out + 1] = redis.call("HGETALL", job_key(id))
  end
  return out
end

if op == "prune" then
  -- ARGV[3] before: done and failed jobs last changed before it go
  local ids = redis.call("ZRANGEBYSCORE", OLD, "-inf", "(" .. ARGV[3], "LIMIT", 0, 1000)
  for _, id in ipairs(ids) do
    local site = redis.call("HGET", job_key(id), "site_id")
    if site then
      redis.call("ZREM", P .. "outbox-site:" .. site, id)
    end
    redis.call("DEL", job_key(id))
    redis.call("ZREM", OLD, id)
  end
  return #ids
end

-- The rest act on one job: ARGV[3] its id, ARGV[4] now, ARGV[5] due_at, ARGV[6] error.
local id, t = ARGV[3], ARGV[4]
local jk = job_key(id)
if redis.call("EXISTS", jk) == 0 then
  return false
end
local fields = redis.call("HMGET", jk, "key", "seq", "state")
local keyz = order_key(fields[1])

if op == "complete" or op == "fail" then
  if op == "complete" then
    redis.call("HSET", jk, "state", "done", "updated_at", t)
  else
    redis.call("HSET", jk, "state", "failed", "updated_at", t, "last_error", ARGV[6])
    redis.call("HINCRBY", jk, "attempts", 1)
  end
  local before = head(keyz)
  redis.call("ZREM", keyz, id)
  redis.call("ZREM", DUE, id)
  redis.call("ZADD", OLD, t, id)
  schedule(keyz, before)
elseif op == "retry" then
  redis.call("HSET", jk, "due_at", ARGV[5], "updated_at", t, "last_error", ARGV[6])
  redis.call("HINCRBY", jk, "attempts", 1)
  if fields[3] == "pending" and head(keyz) == id then
    redis.call("ZADD", DUE, ARGV[5], id)
  end
elseif op == "resend" then
  local before = head(keyz)
  redis.call("HSET", jk, "state", "pending", "attempts", "0", "due_at", t, "updated_at", t)
  redis.call("ZADD", keyz, fields[2], id)
  redis.call("ZREM", OLD, id)
  schedule(keyz, before)
end
return redis.call("HGETALL", jk)

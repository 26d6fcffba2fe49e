-- Routing state of one site, changed atomically (chatserver/routing_redis.py).
--
-- KEYS[1]  the site's routing state, <prefix>{<site>}:routing: a JSON document
--          { agents = { [id] = agent }, queue = { waiting... } }
--   agent   = { cap, depts = {dept = true}, status, nodes = {node = expiry},
--               convs = {conv = true}, last, gone_at, dropped = {node = true} }
--             status: the one the agent chose (online, away, offline), shared by
--             all their connections; absent once forgotten (grace over)
--   waiting = { c = conv, q = queued_at, d = dept or "", p = preferred or "",
--               x = {agent = true} }
-- ARGV[1]  the operation; the rest are its arguments.
--
-- Time comes from Redis (TIME), so processes on machines with different
-- clocks agree on presence expiry.  The policy mirrors routing.pick: the
-- preferred agent first, then the least loaded, then the longest idle.

-- The only key this script touches is KEYS[1] (Redis Cluster routes it by
-- its {<site>} hash tag).  The state is coordination, not record: if Redis
-- loses it, every process rebuilds it (heartbeat returns 0 for a missing one).

local raw = redis.call('GET', KEYS[1])
local st
if raw then st = cjson.decode(raw) else st = { agents = {}, queue = {} } end
if type(st.queue) ~= 'table' then st.queue = {} end
if type(st.agents) ~= 'table' then st.agents = {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

local function connected(a)
  for _, expiry in pairs(a.nodes) do
    if expiry > now then return true end
  end
  return false
end

local function available(a)
  return a.status == 'online' and connected(a)
end

local function serves(a, dept)
  return dept == '' or a.depts[dept] == true
end

local function agent(id)
  local a = st.agents[id]
  if a then
    if type(a.nodes) ~= 'table' then a.nodes = {} end
    if type(a.convs) ~= 'table' then a.convs = {} end
    if type(a.depts) ~= 'table' then a.depts = {} end
  end
  return a
end

local function pick(dept, preferred, exclude)
  local best, best_load, best_last = nil, nil, nil
  for id, _ in pairs(st.agents) do
    local a = agent(id)
    if available(a) and count(a.convs) < a.cap and serves(a, dept)
        and not (exclude and exclude[id]) then
      if id == preferred then return id end
      local load = count(a.convs)
      if best == nil or load < best_load or (load == best_load and a.last < best_last) then
        best, best_load, best_last = id, load, a.last
      end
    end
  end
  return best
end

local function dequeue(conv)
  for i, w in ipairs(st.queue) do
    if w.c == conv then
      table.remove(st.queue, i)
      return true
    end
  end
  return false
end

local function release(conv)
  for id, _ in pairs(st.agents) do
    agent(id).convs[conv] = nil
  end
end

local function save()
  -- cjson encodes an empty table as an object; the decoder above copes.
  redis.call('SET', KEYS[1], cjson.encode(st))
end

local op = ARGV[1]

if op == 'connected' then
  -- id, capacity, depts (JSON list), status ('' keeps the chosen one), node, ttl;
  -- returns the status chosen before ('' when none)
  local a = agent(ARGV[2]) or { convs = {}, nodes = {}, last = 0 }
  local before = a.status or ''
  a.cap = tonumber(ARGV[3])
  a.depts = {}
  for _, d in ipairs(cjson.decode(ARGV[4])) do a.depts[d] = true end
  if ARGV[5] ~= '' then a.status = ARGV[5] end
  if a.status == nil then a.status = 'online' end
  if type(a.nodes) ~= 'table' then a.nodes = {} end
  a.nodes[ARGV[6]] = now + tonumber(ARGV[7])
  if type(a.dropped) == 'table' then a.dropped[ARGV[6]] = nil end
  a.gone_at = nil
  st.agents[ARGV[2]] = a
  save()
  return before

elseif op == 'heartbeat' then
  -- node, ttl, agent ids...; returns 0 when the state was missing (Redis lost
  -- it: the caller rebuilds it), else {1, id, how, id, how, ...}: the listed
  -- agents heard again after a silence, 'late' (connected nowhere until this
  -- renewal: the queue may have waited for them, the caller routes it) or
  -- 'dropped' ('expired' took their chats, status and this node's entry after
  -- the grace: the caller registers them again).  Only renews a registration:
  -- the caller's list may be older than a 'disconnected' that overtook it on
  -- another connection, and that disconnect must win (it also clears 'dropped').
  if not raw then return 0 end
  local node = ARGV[2]
  local ttl = tonumber(ARGV[3])
  local back = { 1 }
  for i = 4, #ARGV do
    local a = agent(ARGV[i])
    if a and a.nodes[node] then
      if not connected(a) then
        table.insert(back, ARGV[i])
        table.insert(back, 'late')
      end
      a.nodes[node] = now + ttl
    elseif a and type(a.dropped) == 'table' and a.dropped[node] then
      table.insert(back, ARGV[i])
      table.insert(back, 'dropped')
    end
  end
  save()
  return back

elseif op == 'track' then
  -- id, capacity, depts (JSON list): know an agent nobody connected yet (the
  -- start-up or rebuild restore gives it the chats the record says it holds;
  -- if it never connects, 'expired' or 'gone' requeues them after the grace)
  if st.agents[ARGV[2]] then return 0 end
  local a = { convs = {}, nodes = {}, last = 0, depts = {}, gone_at = now }
  a.cap = tonumber(ARGV[3])
  for _, d in ipairs(cjson.decode(ARGV[4])) do a.depts[d] = true end
  st.agents[ARGV[2]] = a
  save()
  return 1

elseif op == 'disconnected' then
  -- id, node
  local a = agent(ARGV[2])
  if a then
    a.nodes[ARGV[3]] = nil
    if type(a.dropped) == 'table' then a.dropped[ARGV[3]] = nil end
    if not connected(a) then a.gone_at = now end
    save()
  end
  return 1

elseif op == 'gone' then
  -- id: grace over; if still not connected, release and return its chats
  local a = agent(ARGV[2])
  if not a or connected(a) then return {} end
  local convs = {}
  for c, _ in pairs(a.convs) do table.insert(convs, c) end
  table.sort(convs)
  a.convs = {}
  a.status = nil
  save()
  return convs

elseif op == 'expired' then
  -- grace: agents whose every node expired more than grace seconds ago
  -- lose their chats and their chosen status; returns {agent, conv, agent, conv, ...}
  local grace = tonumber(ARGV[2])
  local out = {}
  local changed = false
  for id, _ in pairs(st.agents) do
    local a = agent(id)
    if not connected(a) and (next(a.convs) ~= nil or a.status ~= nil) then
      local last_seen = a.gone_at or 0
      for _, expiry in pairs(a.nodes) do
        if expiry > last_seen then last_seen = expiry end
      end
      if last_seen + grace <= now then
        for c, _ in pairs(a.convs) do
          table.insert(out, id)
          table.insert(out, c)
        end
        a.convs = {}
        -- the nodes whose entries lapsed: one still running hears it at its
        -- next heartbeat and registers the agent again (a stall, not a death)
        a.dropped = {}
        for n, _ in pairs(a.nodes) do a.dropped[n] = true end
        a.nodes = {}
        a.status = nil
        changed = true
      end
    end
  end
  if changed then save() end
  return out

elseif op == 'status' then
  -- id, status ('' forgets the chosen status)
  local a = agent(ARGV[2])
  if a then
    if ARGV[3] == '' then a.status = nil else a.status = ARGV[3] end
    save()
  end
  return 1

elseif op == 'update' then
  local a = agent(ARGV[2])
  if a then
    a.cap = tonumber(ARGV[3])
    a.depts = {}
    for _, d in ipairs(cjson.decode(ARGV[4])) do a.depts[d] = true end
    save()
  end
  return 1

elseif op == 'restore' then
  -- conv, state, queued_at, dept, agents (JSON list): idempotent
  local conv = ARGV[2]
  if ARGV[3] == 'queued' then
    for _, w in ipairs(st.queue) do if w.c == conv then return 0 end end
    for id, _ in pairs(st.agents) do if agent(id).convs[conv] then return 0 end end
    local w = { c = conv, q = tonumber(ARGV[4]), d = ARGV[5], p = '', x = {} }
    local pos = #st.queue + 1
    for i, other in ipairs(st.queue) do
      if other.q > w.q then pos = i; break end
    end
    table.insert(st.queue, pos, w)
  else
    for _, id in ipairs(cjson.decode(ARGV[6])) do
      local a = agent(id)
      if a then a.convs[conv] = true end
    end
  end
  save()
  return 1

elseif op == 'submit' then
  -- conv, queued_at, dept, preferred, exclude (JSON list); returns 1 when
  -- queued, 0 (changing nothing) when an agent holds the conv: one took it (a
  -- join from the published 'queued' record, a drain) since the caller
  -- decided it waits, so it stays theirs.  The caller released the agents
  -- who left it; a hold of an excluded agent now is a join back.
  local conv = ARGV[2]
  for id, _ in pairs(st.agents) do
    if agent(id).convs[conv] then return 0 end
  end
  local x = {}
  for _, id in ipairs(cjson.decode(ARGV[6])) do x[id] = true end
  dequeue(conv)
  local w = { c = conv, q = tonumber(ARGV[3]), d = ARGV[4], p = ARGV[5], x = x }
  local pos = #st.queue + 1
  for i, other in ipairs(st.queue) do
    if other.q > w.q then pos = i; break end
  end
  table.insert(st.queue, pos, w)
  save()
  return 1

elseif op == 'department' then
  -- conv, dept ('' none): a waiting conv's department changed (renamed or
  -- removed); it keeps its place, exclusions and preferred agent.  Returns 0,
  -- changing nothing, when it waits in no queue.
  for _, w in ipairs(st.queue) do
    if w.c == ARGV[2] then
      w.d = ARGV[3]
      save()
      return 1
    end
  end
  return 0

elseif op == 'drain' then
  local out = {}
  local i = 1
  while i <= #st.queue do
    local w = st.queue[i]
    local x = w.x
    if type(x) ~= 'table' then x = {} end
    local id = pick(w.d, w.p, x)
    if id then
      table.remove(st.queue, i)
      local a = agent(id)
      a.convs[w.c] = true
      a.last = now
      table.insert(out, w.c)
      table.insert(out, id)
    else
      i = i + 1
    end
  end
  if #out > 0 then save() end
  return out

elseif op == 'attach' then
  -- conv, agent
  local a = agent(ARGV[3])
  if not a or not connected(a) or a.status == nil or a.status == 'offline' then return 0 end
  if a.convs[ARGV[2]] then return 1 end
  if count(a.convs) >= a.cap then return 0 end
  dequeue(ARGV[2])
  a.convs[ARGV[2]] = true
  a.last = now
  save()
  return 1

elseif op == 'detach' then
  local a = agent(ARGV[3])
  if a then a.convs[ARGV[2]] = nil; save() end
  return 1

elseif op == 'remove' then
  dequeue(ARGV[2])
  release(ARGV[2])
  save()
  return 1

elseif op == 'queue' then
  local out = {}
  for _, w in ipairs(st.queue) do table.insert(out, w.c) end
  return out

elseif op == 'available' then
  -- ARGV[2], optional: count only agents serving this department
  local dept = ARGV[2]
  local n = 0
  for id, _ in pairs(st.agents) do
    local a = agent(id)
    if available(a) and (dept == nil or serves(a, dept)) then n = n + 1 end
  end
  return n

elseif op == 'load' then
  local a = agent(ARGV[2])
  if not a then return 0 end
  return count(a.convs)
end

return redis.error_reply('unknown routing operation ' .. tostring(op))

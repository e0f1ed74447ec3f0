-- apply_entry: replace one time entry's contribution to every total it touches, in every
-- generation of totals being kept (the one answers read and, during a rebuild, the one being
-- built), record its state and append one change event, all in one atomic step.
--
-- KEYS[1] meta hash      (id -> "<status>|<fingerprint>|<day>"; status R running, L stopped, D deleted;
--                        field `gens`: the label of KEYS[5]'s generations)
-- KEYS[2] entries hash   (id -> state JSON)
-- KEYS[3] running hash   (id -> state JSON of running timers)
-- KEYS[4] changes stream
-- KEYS[5] projection hash (gen, next: the generations kept; app/rebuild.py)
-- ARGV[1] key prefix "cw:{ws}:" (generation keys "<prefix>g<N>:c:<day>", ":ver",
--         ":il:<day>", ":contrib" and name hashes "<prefix>n:<kind>" are built
--         from it; all share the hash tag, so they are in the same cluster slot as KEYS)
-- ARGV[2] entry id
-- ARGV[3] kind: create | update | delete | restore | sync
-- ARGV[4] new status: R | L | D
-- ARGV[5] fingerprint of the new state
-- ARGV[6] state JSON ("" when a delete carries no usable state)
-- ARGV[7] start, epoch seconds (not read since the day index became a list, 2026-12)
-- ARGV[8] stream MAXLEN (approximate)
-- ARGV[9] display JSON (names for the change feed)
-- ARGV[10] the generations the contributions were computed for: "<gen>" or "<gen>,<next>"
-- ARGV[11] contribution JSON {day, f, n} for <gen> ("" for a delete)
-- ARGV[12] contribution JSON for <next> ("" when no rebuild runs, or a delete)
-- ARGV[13..] name records as triples: kind, id, JSON; a kind ending in "?" ("project?") is a
--         partial record, written only when the hash has none for that id
-- Returns {outcome, stream id}: outcome is started|stopped|created|updated|deleted|restored when
-- applied (stream id set), or duplicate|stale|deleted-before when nothing changed (stream id "");
-- {"resettle", ""} when the generations are not those of ARGV[10] (the caller reloads them
-- and computes again); or {"rejected", reason} when a total it touches holds something other
-- than an integer or would leave +-2^53: then nothing at all is written.
--
-- Redis does not roll back a script that fails part-way: the totals, the only writes that can
-- fail on what is stored, come first and are undone on a refusal.

local prefix, id, kind, status, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local state = ARGV[6]
-- Totals stay within 2^53, where Redis's int64, Lua's doubles and JSON readers all agree.
local LIMIT = 9007199254740992

-- The entry's record and the generations applies write to, in one read: the meta hash keeps a
-- copy of the projection hash's "<gen>" or "<gen>,<next>" in its field `gens` (app/keys.py
-- entry_meta). Whatever changes gen or next deletes the copy in the same atomic step.
local got = redis.call('HMGET', KEYS[1], id, 'gens')
local meta, label = got[1], got[2]
local copy = false
if not label then
  -- No copy (the generations changed, or a meta hash from before the field): the projection
  -- hash says, and the copy is made from it with the entry's record, in this atomic step.
  local proj = redis.call('HMGET', KEYS[5], 'gen', 'next')
  if not proj[1] then return {'resettle', ''} end
  label = proj[1]
  if proj[2] then label = label .. ',' .. proj[2] end
  copy = true
end
if label ~= ARGV[10] then return {'resettle', ''} end
local gens = {label}
local comma = string.find(label, ',', 1, true)
if comma then gens = {string.sub(label, 1, comma - 1), string.sub(label, comma + 1)} end

-- Names ride along with every delivery, applied or not (a resent entry may carry a new name).
local function write_names()
  for i = 13, #ARGV, 3 do
    local kind = ARGV[i]
    if string.sub(kind, -1) == '?' then
      -- A partial record (a Reports row's project: no estimate, no budget) only fills a gap.
      redis.call('HSETNX', prefix .. 'n:' .. string.sub(kind, 1, -2), ARGV[i + 1], ARGV[i + 2])
    else
      -- A name Clockify deleted stays deleted: an entry delivered late may still carry it,
      -- but only a NEW_/..._UPDATED name event (apply_names) brings it back.
      local key = prefix .. 'n:' .. kind
      local held = redis.call('HGET', key, ARGV[i + 1])
      if not (held and string.find(held, '"deleted":true', 1, true)) then
        redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2])
      end
    end
  end
end

local old_status, old_fp
if meta then
  old_status, old_fp = string.match(meta, '^(%a)|([^|]*)|')
end

local skip
if kind == 'delete' then
  if old_status == 'D' then skip = 'duplicate' end
elseif kind == 'create' then
  -- A creation is the first state of any entry: whatever is stored is at least as new.
  if old_status then skip = (old_fp == fp) and 'duplicate' or 'stale' end
elseif old_status == 'D' and kind == 'update' then
  skip = 'deleted-before'
elseif old_status and old_status ~= 'D' and old_fp == fp then
  skip = 'duplicate'
elseif old_status == 'L' and status == 'R' and kind ~= 'restore' then
  -- A stopped entry never runs again in Clockify, so a running state after a stop is late.
  skip = 'stale'
end
if skip then
  write_names()
  return {skip, ''}
end

if kind == 'delete' then
  local old_state = redis.call('HGET', KEYS[2], id)
  if old_state then state = old_state end
end
if state == '' then state = cjson.encode({id = id}) end

-- Per generation: the stored contribution (old) and the new one; their difference is netted
-- per total first, so unchanged fields cost nothing. A cell field goes to its day's hash; the
-- changes are listed as (key, field, delta). (A month's report and a project's progress are
-- summed from its days by the reader, which caches them while the days' versions stay.)
local ks, fs, ds, m = {}, {}, {}, 0
-- The days whose totals change, per generation: their version (`<gen>:ver`, day -> count) goes
-- up, so a reader's cache of a day's (and a month's: the sum of its days') totals knows when
-- it is stale.
local touched, nt = {}, 0
local function collect(gp, c, sign)
  if c.day == '' then return end
  if c.f[1] and not touched[gp .. c.day] then
    touched[gp .. c.day] = true
    nt = nt + 1
    touched[nt] = {gp, c.day}
  end
  local day_key = gp .. 'c:' .. c.day
  -- The first n fields are kept; the amounts after them are the cell's rates times its
  -- seconds, worked out by readers (app/projection.py contribution). No n: every field.
  local f = c.f
  for j = 1, c.n or #f do
    m = m + 1
    ks[m], fs[m], ds[m] = day_key, f[j][1], sign * f[j][2]
  end
end
-- A running timer's contribution adds nothing: read its day without decoding it. (A
-- contribution stored by clockwall before 2026-12 also holds "p", project-month fields no
-- longer kept: ignored.)
local function decode_old(raw)
  if string.find(raw, '"f":[]', 1, true) then
    return {day = string.match(raw, '"day":"([^"]*)"') or '', f = {}}
  end
  return cjson.decode(raw)
end
local olds, news, old_raws = {}, {}, {}
local netting = false
for i, g in ipairs(gens) do
  local gp = prefix .. 'g' .. g .. ':'
  -- An entry without a meta record holds no contribution anywhere (both are written together).
  if meta then old_raws[i] = redis.call('HGET', gp .. 'contrib', id) end
  if old_raws[i] then
    olds[i] = decode_old(old_raws[i])
    if olds[i].f[1] then netting = true end
    collect(gp, olds[i], -1)
  end
  if status ~= 'D' then
    news[i] = cjson.decode(ARGV[10 + i])
    collect(gp, news[i], 1)
  end
end
if netting then
  -- Old and new meet on the same totals: net them (an edit of the description costs nothing).
  local seen = {}
  local nk, nf, nd, nm = {}, {}, {}, 0
  for i = 1, m do
    local slot = ks[i] .. '\0' .. fs[i]
    local at = seen[slot]
    if at then
      nd[at] = nd[at] + ds[i]
    else
      nm = nm + 1
      nk[nm], nf[nm], nd[nm] = ks[i], fs[i], ds[i]
      seen[slot] = nm
    end
  end
  ks, fs, ds, m = nk, nf, nd, nm
end

-- Apply every changed total, each checked as it is made: HINCRBY refuses a value that is not an
-- integer or an int64 overflow, and a total beyond 2^53 is refused here. On a refusal the totals
-- already changed are changed back before anything else is written, so the entry is all or
-- nothing (Redis does not roll back a script that fails part-way). Undoing costs nothing on the
-- normal path, where checking first would cost a read of every total.
local abs, find = math.abs, string.find
local wkeys, wfields, wdeltas, n = {}, {}, {}, 0
local function undo()
  for i = n, 1, -1 do
    -- A field this entry created goes again (a total of zero is never kept).
    if redis.call('HINCRBY', wkeys[i], wfields[i], -wdeltas[i]) == 0 then
      redis.call('HDEL', wkeys[i], wfields[i])
    end
  end
end
for i = 1, m do
  local key, field, delta = ks[i], fs[i], ds[i]
  do
    if delta ~= 0 then
      local total = redis.pcall('HINCRBY', key, field, delta)
      if type(total) == 'table' then
        undo()
        -- Only what is stored can make a total refuse (an overflow, a value or key of another
        -- kind); anything else (NOREPLICAS, READONLY, OOM...) is Redis refusing writes for now,
        -- passed on as the error it is.
        local why = tostring(total.err)
        if not (find(why, 'overflow', 1, true) or find(why, 'not an integer', 1, true)
            or find(why, 'WRONGTYPE', 1, true)) then
          return total
        end
        return {'rejected', 'the total ' .. field .. ' in ' .. key .. ' cannot change by ' ..
          string.format('%.0f', delta) .. ' (' .. tostring(total.err) .. ')'}
      end
      n = n + 1
      wkeys[n], wfields[n], wdeltas[n] = key, field, delta
      if abs(total) > LIMIT then
        undo()
        return {'rejected', 'the total ' .. field .. ' in ' .. key .. ' would become ' ..
          string.format('%.0f', total) .. ', beyond 2^53'}
      end
      -- A total back at zero leaves its hash (an undo brings it back from zero exactly).
      if total == 0 then redis.call('HDEL', key, field) end
    end
  end
end
for i = 1, nt do
  redis.call('HINCRBY', touched[i][1] .. 'ver', touched[i][2], 1)
end
write_names()

for i, g in ipairs(gens) do
  local gp = prefix .. 'g' .. g .. ':'
  local old, new = olds[i], news[i]
  if new then
    -- The day's list of entry ids (app/keys.py day_list) gets the id when the entry comes to
    -- the day. Nothing is ever taken out: a reader keeps an id only where the entry's
    -- contribution names that day (an entry moved or deleted is still listed where it was).
    -- (An APPEND in place of a sorted set's ZADD and ZREM: 0.95 of this script's time.)
    if new.day ~= '' and not (old and old.day == new.day) then
      redis.call('APPEND', gp .. 'il:' .. new.day, id .. ' ')
    end
    redis.call('HSET', gp .. 'contrib', id, ARGV[10 + i])
  elseif old then
    redis.call('HDEL', gp .. 'contrib', id)
  end
end

local day = (news[1] and news[1].day) or (olds[1] and olds[1].day) or ''
if copy then
  redis.call('HSET', KEYS[1], id, status .. '|' .. fp .. '|' .. day, 'gens', label)
else
  redis.call('HSET', KEYS[1], id, status .. '|' .. fp .. '|' .. day)
end
redis.call('HSET', KEYS[2], id, state)
if status == 'R' then
  redis.call('HSET', KEYS[3], id, state)
elseif old_status == 'R' or kind == 'delete' or kind == 'sync' then
  redis.call('HDEL', KEYS[3], id)
end

local action
if status == 'D' then
  action = 'deleted'
elseif kind == 'restore' or old_status == 'D' then
  action = 'restored'
elseif not old_status then
  action = (status == 'R') and 'started' or 'created'
elseif old_status == 'R' and status == 'L' then
  action = 'stopped'
else
  action = 'updated'
end

-- The change as the generation answers read sees it: the wall takes `prev` off its totals and
-- adds `next` (each {day, f: cell fields}). Its parts go to the stream as
-- they are and readers join them into one JSON event (app/stream.py `decode_change`): joining
-- them here would build a string of a few KB in Lua for every entry, which cost more of Redis's
-- time than the rest of the event.
local prev = 'null'
if old_raws[1] and old_status ~= 'D' then prev = old_raws[1] end
local next_ = 'null'
if status ~= 'D' then next_ = ARGV[11] end
local stream_id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'a', action,
  'e', state, 'r', tostring(status == 'R'), 'p', prev, 'n', next_, 'm', ARGV[9])
return {action, stream_id}

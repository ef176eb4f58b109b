//! The Lua scripts of the write path. Each runs atomically on the server, in
//! one round trip: it changes the entries, keeps the namespace index in step
//! (scores are absolute expiry in Unix ms from the server's clock, `inf` for
//! none), prunes expired index members, and publishes the change events.

use std::sync::LazyLock;

use redis::Script;

/// Common prologue: server time in ms as `now`; pruning of index members
/// whose expiry has passed; `emit(channel, payload)`, which publishes the
/// event and/or appends it to the durable log; and `write_entry(...)`, the one
/// way an entry is written (value, index score from its TTL, event). The index
/// is always the last declared key; ARGV[1..3] are always: publish ('1'/'0'),
/// log key ('' = no log), log MAXLEN (approximate). Script-specific arguments
/// follow from ARGV[4].
const PRELUDE: &str = r#"
local idx = KEYS[#KEYS]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. now)
local publish, log, maxlen = ARGV[1] == '1', ARGV[2], ARGV[3]
local function emit(channel, payload)
  if payload == '' then return end
  if publish then redis.call('PUBLISH', channel, payload) end
  if log ~= '' then redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'e', payload) end
end
local function write_entry(key, member, value, channel, payload, mode, ttl)
  if mode == 'nx' and redis.call('EXISTS', key) == 1 then return 0 end
  if ttl > 0 then
    redis.call('SET', key, value, 'PX', ttl)
    redis.call('ZADD', idx, now + ttl, member)
  elseif mode == 'keepttl' then
    redis.call('SET', key, value, 'KEEPTTL')
    local left = redis.call('PTTL', key)
    if left > 0 then
      redis.call('ZADD', idx, now + left, member)
    else
      redis.call('ZADD', idx, 'inf', member)
    end
  else
    redis.call('SET', key, value)
    redis.call('ZADD', idx, 'inf', member)
  end
  emit(channel, payload)
  return 1
end
"#;

/// KEYS: entry keys..., index. ARGV (after the common three): mode ('set' |
/// 'nx' | 'keepttl'), then per entry: member, value, channel, payload ('' =
/// silent), ttl_ms ('0' = none). Returns the number of entries written (with
/// 'nx', entries already present are left alone and not counted).
const SET_BODY: &str = r#"
local mode = ARGV[4]
local written = 0
for i = 1, #KEYS - 1 do
  local a = 4 + (i - 1) * 5
  written = written + write_entry(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], mode, tonumber(ARGV[a + 5]))
end
return written
"#;

/// KEYS: entry keys..., index. ARGV (after the common three): mode ('del' | 'take'), then per entry:
/// member, channel, payload. Returns, per entry, 0/1 ('del') or the old value
/// or nil ('take').
const DEL_BODY: &str = r#"
local take = ARGV[4] == 'take'
local out = {}
for i = 1, #KEYS - 1 do
  local a = 4 + (i - 1) * 3
  local key, member, channel, payload = KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local existed
  if take then
    out[i] = redis.call('GETDEL', key)
    existed = out[i] ~= false
  else
    out[i] = redis.call('DEL', key)
    existed = out[i] == 1
  end
  redis.call('ZREM', idx, member)
  if existed then emit(channel, payload) end
end
return out
"#;

/// KEYS: entry key, index. ARGV (after the common three): member, ttl_ms
/// ('-1' = persist), channel, payload. Returns 1 when the entry exists (and so had its TTL changed).
const EXPIRE_BODY: &str = r#"
local key, member, ttl, channel, payload = KEYS[1], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', idx, member)
  return 0
end
if ttl < 0 then
  redis.call('PERSIST', key)
  redis.call('ZADD', idx, 'inf', member)
else
  redis.call('PEXPIRE', key, ttl)
  redis.call('ZADD', idx, now + ttl, member)
end
emit(channel, payload)
return 1
"#;

/// KEYS: index. ARGV (after the common three): entry prefix, channel,
/// payload, limit. Deletes (UNLINK) up to `limit` indexed entries and their
/// index members; when the index is then empty, emits the clear event.
/// Returns `{entries that existed, members left}`.
const CLEAR_BODY: &str = r#"
local prefix, channel, payload, limit = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local members = redis.call('ZRANGE', idx, 0, limit - 1)
local removed = 0
for i = 1, #members, 500 do
  local keys, chunk = {}, {}
  for j = i, math.min(i + 499, #members) do
    keys[#keys + 1] = prefix .. members[j]
    chunk[#chunk + 1] = members[j]
  end
  removed = removed + redis.call('UNLINK', unpack(keys))
  redis.call('ZREM', idx, unpack(chunk))
end
local left = redis.call('ZCARD', idx)
if left == 0 then emit(channel, payload) end
return {removed, left}
"#;

/// KEYS: watched entry keys..., index. ARGV (after the common three): the
/// number n of watched keys; per watched key its expected state ('0' absent,
/// '1' present) and value; the entry prefix; then per entry to write: member,
/// value, channel, payload. Writes (keeping TTLs) only if every watched key
/// still holds what the caller read: an optimistic update that needs no
/// WATCH, so it is safe on a shared cluster connection and across failovers.
/// Returns 1 when written, 0 on conflict.
const CAS_BODY: &str = r#"
local n = tonumber(ARGV[4])
for i = 1, n do
  local state, expected = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local current = redis.call('GET', KEYS[i])
  if state == '0' then
    if current then return 0 end
  elseif current ~= expected then
    return 0
  end
end
local a = 5 + 2 * n
local prefix = ARGV[a]
for j = a + 1, #ARGV, 4 do
  write_entry(prefix .. ARGV[j], ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], 'keepttl', 0)
end
return 1
"#;

/// KEYS: index. Returns the number of live entries. Read-only.
const LEN_BODY: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
"#;

fn with_prelude(body: &str) -> String {
    format!("{PRELUDE}{body}")
}

pub(crate) static SET: LazyLock<(String, Script)> = LazyLock::new(|| script(SET_BODY));
pub(crate) static DEL: LazyLock<(String, Script)> = LazyLock::new(|| script(DEL_BODY));
pub(crate) static EXPIRE: LazyLock<(String, Script)> = LazyLock::new(|| script(EXPIRE_BODY));
pub(crate) static CLEAR: LazyLock<(String, Script)> = LazyLock::new(|| script(CLEAR_BODY));
pub(crate) static CAS: LazyLock<(String, Script)> = LazyLock::new(|| script(CAS_BODY));
pub(crate) static LEN: LazyLock<Script> = LazyLock::new(|| Script::new(LEN_BODY));

/// The full source (for EVAL inside MULTI, where EVALSHA could fail half a
/// transaction after a script flush) and the cached script (EVALSHA elsewhere).
fn script(body: &str) -> (String, Script) {
    let source = with_prelude(body);
    let script = Script::new(&source);
    (source, script)
}

/// KEYS: index. ARGV (after the common three): entry prefix, then members. For each member, makes the
/// index agree with the keyspace: adds live string entries with their expiry,
/// removes members whose entry is gone (or is not a string). Returns
/// `{added, removed}`.
const REPAIR_BODY: &str = r#"
local prefix = ARGV[4]
local added, removed = 0, 0
for i = 5, #ARGV do
  local member = ARGV[i]
  local key = prefix .. member
  local left = redis.call('PTTL', key)
  if left == -2 or redis.call('TYPE', key).ok ~= 'string' then
    removed = removed + redis.call('ZREM', idx, member)
  else
    local score = 'inf'
    if left > 0 then score = now + left end
    added = added + redis.call('ZADD', idx, score, member)
  end
end
return {added, removed}
"#;

pub(crate) static REPAIR: LazyLock<(String, Script)> = LazyLock::new(|| script(REPAIR_BODY));

-- Compare-and-set a session: write meta and blob iff the revision is still the one read.
--
-- KEYS[1]  <prefix>:{<sid>}:rev
-- KEYS[2]  <prefix>:{<sid>}:meta
-- KEYS[3]  <prefix>:{<sid>}:blob
-- ARGV[1]  expected revision (decimal)
-- ARGV[2]  meta bytes
-- ARGV[3]  blob bytes
-- ARGV[4]  time to live, milliseconds (> 0)
--
-- Returns 1 when written (the revision is now ARGV[1] + 1), 0 when the session changed
-- since it was read or no longer exists (nothing written).

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1

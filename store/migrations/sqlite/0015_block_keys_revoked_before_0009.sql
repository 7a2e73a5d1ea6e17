-- Keys revoked for keyCompromise before blocked_keys existed (migration
-- 0009, d365939; the releases before revoked the certificate alone): block them
-- now, each by its first keyCompromise revocation, so the CA never
-- certifies such a key again and the status checker refuses logins with
-- it. The revocation poller's first sweep after start-up revokes (audited)
-- every other certificate still issued with a key blocked here.
INSERT INTO blocked_keys (key_hash, serial, blocked_by, blocked_at)
SELECT c.key_hash, r.serial, r.revoked_by, r.recorded_at
FROM revocations r
JOIN certificates c ON c.serial = r.serial
WHERE r.reason = 1
  AND length(c.key_hash) = 32
  AND r.serial = (SELECT r2.serial FROM revocations r2 JOIN certificates c2 ON c2.serial = r2.serial
                  WHERE r2.reason = 1 AND c2.key_hash = c.key_hash
                  ORDER BY r2.recorded_at, r2.serial LIMIT 1)
  AND NOT EXISTS (SELECT 1 FROM blocked_keys b WHERE b.key_hash = c.key_hash);

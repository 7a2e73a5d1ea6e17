-- Addresses refused mobile-login starts for one civil number, because the
-- citizen denied the logins they had started (POST /oidc/mobile/deny-all).
-- Without it whoever keeps a number's pending logins full from a few
-- addresses could fill them again right after the citizen's deny-all.
-- client_key is the address as the login rate limit keys it (an IPv4
-- address, an IPv6 /64); blocked_until in Unix nanoseconds. Purged once
-- past (Identity.Purge).
CREATE TABLE oidc_login_blocks (
    civil_number  TEXT    NOT NULL,
    client_key    TEXT    NOT NULL,
    blocked_until BIGINT  NOT NULL,
    PRIMARY KEY (civil_number, client_key)
);

CREATE INDEX oidc_login_blocks_until ON oidc_login_blocks (blocked_until);

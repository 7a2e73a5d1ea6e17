-- Who started each remote login: the client's address as the login rate
-- limit keys it (an IPv4 address, an IPv6 /64). The bound on a civil
-- number's pending logins is per starting address, so that someone who
-- knows a citizen's number cannot fill it from one address and lock the
-- citizen's own logins out. Logins started before this column existed
-- have ''.
ALTER TABLE oidc_logins ADD COLUMN client_key TEXT NOT NULL DEFAULT '';

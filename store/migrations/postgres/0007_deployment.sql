-- The deployment a database belongs to (cmd/thiqa: thiqa init writes it,
-- thiqa serve and thiqa restore check it): the SHA-256 of the root CA
-- certificate's DER, lower-case hex. One row, written once, never changed:
-- a node whose data folder holds another root, or that was pointed at
-- another deployment's database, refuses to start instead of mixing two
-- deployments' certificates, serials and audit records.
CREATE TABLE deployment (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    root_sha256 TEXT     NOT NULL CHECK (length(root_sha256) = 64),
    created_at  BIGINT   NOT NULL
);

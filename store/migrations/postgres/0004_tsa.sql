-- Time-stamp token serial numbers (package timestamp, BlockAllocator): one
-- row per allocator name holding the next serial no block has claimed yet.
-- ReserveBlock advances next_serial by a block's size in one transaction, so
-- blocks never overlap, across restarts, crashes and instances. A crash
-- loses the rest of a block; a serial is never handed out twice.
CREATE TABLE tsa_serial_counters (
    name        TEXT   PRIMARY KEY,
    next_serial BIGINT NOT NULL CHECK (next_serial > 0),
    updated_at  BIGINT NOT NULL
);

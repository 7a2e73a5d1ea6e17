package audit

// WithArchiveHooks returns o with hooks called once the archive file is
// in place and after each delete transaction: an error from them stops
// the run there, as a crash would.
func WithArchiveHooks(o ArchiveOptions, afterFile func() error, afterBatch func(deleted int64) error) ArchiveOptions {
	o.afterFile, o.afterBatch = afterFile, afterBatch
	return o
}

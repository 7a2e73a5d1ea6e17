package audit

// ParseArchiveRecordLine reads one record line of an archive file as
// ReadArchive does, for tests.
func ParseArchiveRecordLine(line []byte) (Record, error) {
	var l archiveRecordLine
	if err := strictJSON(line, &l); err != nil {
		return Record{}, err
	}
	return l.record()
}

package store

// FindQuery exposes findQuery for tests.
var FindQuery = findQuery

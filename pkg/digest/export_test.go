package digest

// SetQueueBatch sets how many messages are queued per transaction, for the
// duration of a test.
func SetQueueBatch(t interface{ Cleanup(func()) }, n int) {
	old := queueBatch
	queueBatch = n
	t.Cleanup(func() { queueBatch = old })
}

package digest

import "context"

// SetQueueBatch sets how many messages are queued per transaction, for the
// duration of a test.
func SetQueueBatch(t interface{ Cleanup(func()) }, n int) {
	old := queueBatch
	queueBatch = n
	t.Cleanup(func() { queueBatch = old })
}

// DigestJSON renders the directory.json (and its signature) of the digest
// that would be sent now, after the last digest recorded.
func (j *Job) DigestJSON(ctx context.Context) (body, sig []byte, err error) {
	_, last, err := j.lastDigest(ctx)
	if err != nil {
		return nil, nil, err
	}
	snap, prev, err := j.checked(ctx, last)
	if err != nil {
		return nil, nil, err
	}
	return j.digestJSON(ctx, snap, prev[0])
}

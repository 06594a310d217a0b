package directory

// forge signs and writes an entry for op with payload even where its
// effect is refused (apply fails): what a holder of the directory key
// writing the database by hand could do. It lives in a test file only
// (review r4 finding 4): no build of ccdir can sign a refused entry.
func (t *Tx) forge(op string, payload any) error {
	e, err := t.newEntry(op, payload)
	if err != nil {
		return err
	}
	_ = apply(t.ctx, t.tx, e) // refused or not, it is signed
	return t.seal(e)
}

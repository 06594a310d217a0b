package directory

// KeptSubkeys makes sure that armored, a copy of key fpr, keeps every
// subkey of old, another copy of it (fprs lists a key's fingerprints,
// its primary key's first: keys.Fingerprints): the one check of a key
// copy that may add user IDs, signatures and revocations but no subkey
// of its own (a contact key refresh, a directory.key entry, ccdir
// check's key chain against the keys its rekey entries hand over to).
func KeptSubkeys(fprs func(armored string) ([]string, error), fpr, old, armored string) error {
	return keptSubkeys(fprs, fpr, old, armored)
}

package sm

// XEP-0198's h counts handled stanzas modulo 2^32: after 4294967295 comes
// 0. uint32 arithmetic wraps the same way, so the number of stanzas between
// two values is their difference.

// since is how many stanzas were handled from old to now (mod 2^32).
func since(old, now uint32) uint32 { return now - old }

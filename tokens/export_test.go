package tokens

// VerifiedCacheLen reports how many tokens m's verified-token cache holds.
func VerifiedCacheLen(m *Manager) int {
	if m.cache == nil {
		return 0
	}
	return m.cache.len()
}

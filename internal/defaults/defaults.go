// Package defaults applies the module's rule for config values: zero
// means the documented default.
package defaults

// Set replaces a zero *v with def.
func Set[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

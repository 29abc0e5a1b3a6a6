package writer

// SetAfterListing installs a hook run right after recovery listed the
// segments; it returns a function that removes it.
func SetAfterListing(f func()) (restore func()) {
	afterListing = f
	return func() { afterListing = nil }
}

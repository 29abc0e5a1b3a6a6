// Package edges holds the regression tests of mdjournal's promise at its
// edges — one damage verdict, header checks, serialised maintenance,
// hostile neighbours, bounded inputs — each named for the defect it pins.
// It has no code of its own.
package edges

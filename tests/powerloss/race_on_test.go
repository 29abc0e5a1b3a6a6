//go:build race

package powerloss_test

// raceBuild: the race detector slows every helper process several times;
// the campaign and the roll test then run their smallest slice (the
// library's own packages carry its race tests).
const raceBuild = true

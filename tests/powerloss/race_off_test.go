//go:build !race

package powerloss_test

const raceBuild = false

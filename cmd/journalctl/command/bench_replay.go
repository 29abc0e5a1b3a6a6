package command

// benchReplay is a stub until the replay tool exists: issue 4 adds the
// replay package (raw and zstd archives); this bench is to time it beside
// a raw-read baseline.
func benchReplay(env *Env, args []string) error {
	return usagef("replay benchmark needs the replay tool (issue 4)")
}

package poll

import "os"

// localHost is the host name a holder on this machine records (test
// host names are short and plain, so no truncation applies).
func localHost() string {
	h, _ := os.Hostname()
	return h
}

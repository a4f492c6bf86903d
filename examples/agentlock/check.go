package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentlock/agentlock/logon"
)

// serverCheck turns one -check value into a logon check:
//
//   - http://... or https://...: an HTTP GET that must answer 2xx;
//   - HOST:PORT (a numeric port, [v6]:PORT for IPv6): a TCP connect;
//   - anything else: a directory (a mounted share) that must be
//     listable. Write ./dir:80 for a relative directory whose name
//     looks like HOST:PORT.
func serverCheck(s string, timeout time.Duration) (logon.Check, error) {
	if i := strings.Index(s, "://"); i >= 0 {
		switch strings.ToLower(s[:i]) {
		case "http", "https":
			return logon.HTTP(s, logon.WithTimeout(timeout))
		}
		return nil, fmt.Errorf("%q: only http:// and https:// URLs are checked", s)
	}
	if !filepath.IsAbs(s) && !strings.ContainsAny(s, `/\`) {
		if _, port, err := net.SplitHostPort(s); err == nil {
			if _, err := strconv.ParseUint(port, 10, 16); err == nil {
				return logon.TCP(s, logon.WithTimeout(timeout))
			}
		}
	}
	return logon.Path(s, logon.WithTimeout(timeout))
}

// checkList builds the failover list of the -check values. Nothing is
// cached: the command validates once, right before it locks.
func checkList(values []string, timeout time.Duration) (*logon.List, error) {
	servers := make([]logon.Server, 0, len(values))
	for _, v := range values {
		c, err := serverCheck(v, timeout)
		if err != nil {
			return nil, err
		}
		servers = append(servers, logon.Server{Name: v, Check: c})
	}
	return logon.NewList(servers, logon.WithStrategy(logon.Failover),
		logon.WithSuccessTTL(0), logon.WithFailureTTL(0))
}

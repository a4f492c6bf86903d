package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/agentlock/agentlock/examples/internal/instr"
)

// logonServer is the demo's logon server: an HTTP server on loopback
// in the demo process, with GET /health and GET /packages.json. When
// it is down it accepts connections and never answers, like a server
// behind a dead network link, so that a client waits for its whole
// timeout: the case that used to keep the lock held.
type logonServer struct {
	URL string

	srv  *http.Server
	quit chan struct{}

	mu      sync.Mutex
	down    bool
	catalog instr.Catalog
}

func newLogonServer(cat instr.Catalog) (*logonServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &logonServer{URL: "http://" + l.Addr().String(), quit: make(chan struct{}), catalog: cat}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.serve(func(w http.ResponseWriter, _ instr.Catalog) {
		io.WriteString(w, "ok\n")
	}))
	mux.HandleFunc("GET /"+instr.CatalogFile, s.serve(func(w http.ResponseWriter, cat instr.Catalog) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(cat)
	}))
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(l)
	return s, nil
}

// serve answers with f while the server is up, and hangs while it is
// down (until the client gives up or the server is closed).
func (s *logonServer) serve(f func(http.ResponseWriter, instr.Catalog)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down, cat := s.down, s.catalog
		s.mu.Unlock()
		if down {
			select {
			case <-r.Context().Done():
			case <-s.quit:
			}
			return
		}
		f(w, cat)
	}
}

// setDown takes the server down (true) or brings it back.
func (s *logonServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// setCatalog changes what the server offers.
func (s *logonServer) setCatalog(cat instr.Catalog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catalog = cat
}

func (s *logonServer) close() {
	close(s.quit)
	s.srv.Close()
}

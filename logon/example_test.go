package logon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/agentlock/agentlock/logon"
)

// acquire stands in for lock.Coordinator.Acquire with
// lock.WithPrecondition: it runs the precondition and only then would take
// the lock. Its parameter has the unnamed type that lock uses.
func acquire(ctx context.Context, precondition func(context.Context) error) error {
	if err := precondition(ctx); err != nil {
		return fmt.Errorf("precondition failed, lock not taken: %w", err)
	}
	// ... the lock is taken here ...
	return nil
}

// An installer validates its logon servers before taking the lock, and
// then reads its instructions from the server that was actually checked.
func Example() {
	// logon1 is down: nothing listens on its port.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + l.Addr().String()
	l.Close()

	// logon2 is up and serves the instructions.
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ready") })
	mux.HandleFunc("/instructions", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "install Office 97") })
	up := httptest.NewServer(mux)
	defer up.Close()

	// Name each server by what the installer needs to reach it.
	var servers []logon.Server
	for _, base := range []string{down, up.URL} {
		check, err := logon.HTTP(base+"/health", logon.WithBodyContains("ready"))
		if err != nil {
			panic(err) // a configuration mistake, found before any probe
		}
		servers = append(servers, logon.Server{Name: base, Check: check})
	}
	list, err := logon.NewList(servers, logon.WithCheckTimeout(2*time.Second))
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// One Validation per acquisition. With the lock package:
	//
	//	lease, err := c.Acquire(ctx, lock.WithPrecondition(v.Check))
	v := list.Validation()
	if err := acquire(ctx, v.Check); err != nil {
		fmt.Println(err)
		return
	}
	srv, _ := v.Server()
	resp, err := http.Get(srv.Name + "/instructions")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println("validated the second server:", srv.Name == up.URL)
	fmt.Println("instructions:", string(body))
	// Output:
	// validated the second server: true
	// instructions: install Office 97
}

// A failed check says which server failed and how, in words a user can act
// on, and its kind can be tested with errors.Is.
func ExampleCheckError() {
	err := error(&logon.CheckError{Server: "10.0.0.5:445", Kind: logon.KindRefused})
	fmt.Println(err)
	fmt.Println(errors.Is(err, logon.KindRefused))
	// Output:
	// logon server 10.0.0.5:445: connection refused
	// true
}

// Path checks a mounted share before the installer relies on it (here a
// temporary directory stands for \\logon1\sms\inst). A Check plugs
// straight into lock.WithPrecondition:
//
//	c, err := lock.New("pcm-install", lock.WithPrecondition(check))
func ExamplePath() {
	share, err := os.MkdirTemp("", "share")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(share)
	check, err := logon.Path(share,
		logon.WithMarker("INSTRUCTIONS.txt"),
		logon.WithTimeout(3*time.Second))
	if err != nil {
		log.Fatal(err)
	}

	err = check(context.Background())
	fmt.Println("no marker yet:", errors.Is(err, logon.KindNotFound))
	os.WriteFile(filepath.Join(share, "INSTRUCTIONS.txt"), nil, 0o644)
	fmt.Println("marker in place:", check(context.Background()))
	// Output:
	// no marker yet: true
	// marker in place: <nil>
}

// A bad argument or option is an error from the constructor, before
// anything touches the network, naming what is wrong.
func ExampleTCP_configError() {
	_, err := logon.TCP("logon1", logon.WithTimeout(time.Second))
	fmt.Println(err)
	fmt.Println(errors.Is(err, logon.ErrConfig))
	// Output:
	// logon.TCP: addr: address logon1: missing port in address
	// true
}

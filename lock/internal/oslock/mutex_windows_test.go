package oslock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentlock/agentlock/internal/spawn"
	"golang.org/x/sys/windows"
)

// TestMutexHeldAndTry: held tells a free mutex from one that a thread
// owns, and an abandoned one (its owner killed) counts as free;
// a try reports a held mutex busy, takes a free one, and says when the
// one it took was abandoned.
func TestMutexHeldAndTry(t *testing.T) {
	name := fmt.Sprintf(`Local\agentlock-test-held-%d-%d`, os.Getpid(), time.Now().UnixNano())
	m, err := openMutex(name)
	if err != nil {
		t.Fatal(err)
	}
	wantHeld := func(what string, want bool) {
		t.Helper()
		if held, ok := m.held(); !ok || held != want {
			t.Fatalf("%s: held = %v, %v; want %v, true", what, held, ok, want)
		}
	}
	ctx := context.Background()
	wantHeld("new mutex", false)
	o, abandoned, err := m.Lock(ctx, false)
	if err != nil || abandoned {
		t.Fatalf("try on a free mutex = %v, abandoned %v", err, abandoned)
	}
	wantHeld("taken", true)
	if _, _, err := m.Lock(ctx, false); err != ErrMutexBusy {
		t.Fatalf("try on a held mutex = %v, want ErrMutexBusy", err)
	}
	if err := o.Unlock(); err != nil {
		t.Fatal(err)
	}
	wantHeld("released", false)

	// A process killed while it owns the mutex abandons it.
	var out io.ReadCloser
	child, err := spawn.Start(func() (*exec.Cmd, error) {
		child := exec.Command(os.Args[0], "-test.run=^TestMutexOwnerChild$")
		child.Env = append(os.Environ(), mutexChildEnv+"="+name)
		var err error
		out, err = child.StdoutPipe()
		return child, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer child.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); !strings.HasPrefix(line, "owned") {
		t.Fatalf("the child says %q, want owned", line)
	}
	wantHeld("owned by another process", true)
	child.Process.Kill()
	child.Wait()
	wantHeld("its owner killed", false)
	o, abandoned, err = m.Lock(ctx, false)
	if err != nil || !abandoned {
		t.Fatalf("try on an abandoned mutex = %v, abandoned %v; want the mutex, abandoned", err, abandoned)
	}
	o.Unlock()
}

const mutexChildEnv = "OSLOCK_TEST_MUTEX_CHILD"

// TestMutexOwnerChild is the child of TestMutexHeldAndTry: it takes the
// mutex, says so, and waits to be killed.
func TestMutexOwnerChild(t *testing.T) {
	name := os.Getenv(mutexChildEnv)
	if name == "" {
		t.Skip("the child of TestMutexHeldAndTry")
	}
	m, err := openMutex(name)
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	if r, err := windows.WaitForSingleObject(m.h, windows.INFINITE); r != windows.WAIT_OBJECT_0 {
		t.Fatalf("wait = %d, %v", r, err)
	}
	fmt.Println("owned")
	time.Sleep(time.Hour)
}

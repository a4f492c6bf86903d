package guarded_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/guarded"
)

// The installer writes the instruction file under its lease; the poller
// reads it at any time, without the lock, and never sees a torn file.
// Before the first write there is no file: the poller sees
// fs.ErrNotExist, and the installer's first Write creates the file.
func ExampleFile() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	path := filepath.Join(dir, "instructions")

	installer, _ := lock.New("pcm-install", lock.WithDir(dir))
	file, err := guarded.Open(path, guarded.By(installer))
	if err != nil {
		fmt.Println(err)
		return
	}

	// The poller's side: it opens the same file and only reads.
	view, _ := guarded.Open(path)
	_, err = view.Read()
	fmt.Println("before the first write:", errors.Is(err, fs.ErrNotExist))

	lease, err := installer.Acquire(ctx, lock.WithPurpose("installing Office 97"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := file.Write(lease, []byte("Office 97: installing\n")); err != nil {
		fmt.Println(err)
	}
	err = file.Update(lease, func(old []byte) ([]byte, error) {
		return []byte(strings.Replace(string(old), "installing", "done", 1)), nil
	})
	if err != nil {
		fmt.Println(err)
	}
	lease.Release()

	data, err := view.Read()
	fmt.Printf("the poller reads: %q, %v\n", data, err)

	// A lease that has been released can no longer write.
	err = file.Write(lease, []byte("too late"))
	fmt.Println("after Release:", errors.Is(err, lock.ErrFenced))
	// Output:
	// before the first write: true
	// the poller reads: "Office 97: done\n", <nil>
	// after Release: true
}

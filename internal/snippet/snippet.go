// Package snippet builds a small Go program against this module, for
// tests that check that a misuse of an API does not compile. The
// program is added to the module through the go command's -overlay
// flag, so nothing is written to the source tree.
package snippet

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build compiles a main package that imports the packages in imports
// (import paths) and whose main function runs body, and returns the
// go command's output and error. It skips the test under -short or
// when the go command is not installed.
func Build(t testing.TB, imports []string, body string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a program with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %q, %v", out, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	tmp := t.TempDir()
	var src strings.Builder
	src.WriteString("package main\n\nimport (\n")
	for _, p := range imports {
		src.WriteString("\t\"" + p + "\"\n")
	}
	src.WriteString(")\n\nfunc main() {\n\t" + body + "\n}\n")
	file := filepath.Join(tmp, "main.go")
	write(t, file, []byte(src.String()))
	virtual := filepath.Join(root, "internal", "snippet", "snippetmain", "main.go")
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{virtual: file}})
	ov := filepath.Join(tmp, "overlay.json")
	write(t, ov, overlay)
	cmd := exec.Command(goBin, "build", "-overlay", ov, "-o", filepath.Join(tmp, "snippet.exe"), "./internal/snippet/snippetmain")
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	return string(b), err
}

func write(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

package capture

import (
	"fmt"
	"os"
	"path/filepath"
)

// A run dir holds Authorization headers, cookies, payloads and the TLS key
// log: it is the user's alone. Its modes are set with chmod after creation,
// so the umask neither widens nor narrows them.
const (
	// runDirMode is the mode of a run dir.
	runDirMode os.FileMode = 0o700
	// PrivateMode is the mode of every file in a run dir.
	PrivateMode os.FileMode = 0o600
)

// makeRunDir creates dir with mode 0700 (its missing parents as the umask
// says), or sets that mode on a dir that exists.
func makeRunDir(dir string) error {
	if parent := filepath.Dir(dir); parent != "." {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("creating run dir %s: %w", dir, err)
		}
	}
	if err := os.Mkdir(dir, runDirMode); err != nil && !os.IsExist(err) {
		return fmt.Errorf("creating run dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, runDirMode); err != nil {
		return fmt.Errorf("setting mode %o on run dir %s: %w", runDirMode, dir, err)
	}
	return nil
}

// OpenPrivate opens path for writing with flag (O_CREATE added) and sets
// its mode to 0600, also when the file existed with another mode.
func OpenPrivate(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|os.O_CREATE|os.O_WRONLY, PrivateMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(PrivateMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("setting mode %o on %s: %w", PrivateMode, path, err)
	}
	return f, nil
}

// IsRunDir reports whether dir holds a run.json: a file written there
// belongs to a run dir and is private.
func IsRunDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, RunFile))
	return err == nil && fi.Mode().IsRegular()
}

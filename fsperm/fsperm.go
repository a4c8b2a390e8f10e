// Package fsperm keeps a node's files to itself. The data directory holds
// the database (map keys, token and password hashes), the tenant snapshot
// and the panel's signing key: nothing there is for other local users.
package fsperm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// Modes of the data directory and the files in it.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// PrivateDir creates dir (and parents) with mode 0700, or tightens an
// existing dir that others may read, saying so in the log. dir is the
// configured data_dir: a symbolic link there is the operator's, and
// followed.
func PrivateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return tighten(dir, DirMode, log)
}

// PrivateSubdir is PrivateDir for a directory the node keeps inside
// data_dir (the spool), whose mode it changes only on the directory it
// opened, never through a symbolic link: followed, a node running as root
// made the /etc or /usr a link named 0700. A link to a directory is still
// used, its target's mode left as it is with a warning (an operator's way
// to put the spool on another disk); a dangling link, or a file of
// another kind, is refused, naming what it is.
func PrivateSubdir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(dir), DirMode); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.Mkdir(dir, DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|noFollow|nonBlock|directory, 0)
	// ENOTDIR: O_DIRECTORY's refusal of what is no directory.
	if err != nil && (refusedOpen(err) || errors.Is(err, syscall.ENOTDIR)) {
		fi, serr := os.Stat(dir)
		if serr == nil && fi.IsDir() {
			if log != nil {
				log.Warn("a symbolic link to a directory; used as it is, its mode left as it is", "path", dir)
			}
			return nil
		}
		what := "symbolic link to nothing"
		if lfi, lerr := os.Lstat(dir); lerr == nil && lfi.Mode()&fs.ModeSymlink == 0 {
			what = kind(lfi.Mode())
		}
		return &fs.PathError{Op: "open", Path: dir, Err: fmt.Errorf("not a directory (a %s)", what)}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "open", Path: dir, Err: fmt.Errorf("not a directory (a %s)", kind(fi.Mode()))}
	}
	return tightenOpen(f, DirMode, log)
}

// PrivateFiles tightens each existing file that others may read to 0600,
// saying so in the log; missing files are skipped. Only the node's own
// regular files are changed, through the open file (f.Chmod), never by
// path: a symbolic link is not followed (a node running as root made the
// /etc/shadow or /dev/zero a link led to 0600), nor swapped in between a
// check and the chmod, and a link, FIFO, device or directory where a file
// should be, or a file with a second name (a hard link), is named in a warning and left to its reader to refuse.
func PrivateFiles(log *slog.Logger, paths ...string) error {
	var errs []error
	for _, p := range paths {
		f, err := OpenOwn(p, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, ErrNotRegular) {
			if log != nil {
				log.Warn("not a regular file; its mode is left as it is", "path", p, "err", err)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := tightenOpen(f, FileMode, log); err != nil {
			errs = append(errs, err)
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// ErrNotRegular is what OpenOwn and CreatePrivate refuse: a symbolic
// link, directory, FIFO, device or socket where the node keeps a file of
// its own.
var ErrNotRegular = errors.New("not a regular file")

// OpenOwn opens path, a file in data_dir that only the node writes, as
// os.OpenFile does, but only as a regular file: a symbolic link there is
// not followed (O_NOFOLLOW: a node running as root wrote, truncated or
// created the file a link named), a FIFO does not block the open
// (O_NONBLOCK), and what the open found is checked on the descriptor
// (fstat), so nothing swapped in after a check is used. Anything but a
// regular file is an error wrapping ErrNotRegular, naming what it is.
func OpenOwn(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|noFollow|nonBlock, perm)
	if err != nil {
		if refusedOpen(err) {
			what := "symbolic link, directory or FIFO"
			if fi, lerr := os.Lstat(path); lerr == nil {
				what = kind(fi.Mode())
			}
			return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (a %s; not followed)", ErrNotRegular, what)}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (a %s)", ErrNotRegular, kind(fi.Mode()))}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// kind names a file type for a message.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "file of type " + m.Type().String()
}

// CreatePrivate creates path with mode 0600 if it does not exist, so that a
// program that then opens it (SQLite) finds it private from the start.
// What is there must be a regular file (OpenOwn): a dangling symbolic link
// was followed and its target created, anywhere a node running as root
// could write.
func CreatePrivate(path string) error {
	f, err := OpenOwn(path, os.O_RDONLY|os.O_CREATE, FileMode)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err // the path once in the message
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// maxSecretBytes bounds a secret file: a key, token or password is at
// most a few hundred bytes, a file of rotated keys a few lines, a TLS
// certificate chain a few kilobytes.
const maxSecretBytes = 64 << 10

// ReadSecret reads the file a config key or flag names for a key, token,
// password or TLS certificate. Read whole, a path mistaken for one (/dev/zero, a log) ran the
// node out of memory before any check saw it; a file over 64 KiB is
// refused instead.
func ReadSecret(path string) ([]byte, error) {
	return ReadLimited(path, maxSecretBytes, "a key, certificate, token or password")
}

// ReadLimited reads the file at path whole if it holds at most limit
// bytes, and refuses it, having read no more than one byte past limit,
// naming what it should have been. A path mistaken for a small file
// (/dev/zero, a log) was read until the node ran out of memory.
func ReadLimited(path string, limit int, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		size := fmt.Sprintf("%d KiB", limit>>10)
		if limit%(1<<20) == 0 {
			size = fmt.Sprintf("%d MiB", limit>>20)
		}
		return nil, fmt.Errorf("%s: over %s, too large for %s", path, size, what)
	}
	return b, nil
}

// WarnShared logs when the secret file the config key names is readable
// by group or others: whoever reads it holds what it grants. It only
// warns, since a container's secret mounts are often 0444 and not the
// node's to change; a file it cannot stat is the reader's to report.
func WarnShared(log *slog.Logger, key, path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 || log == nil {
		return
	}
	log.Warn(key+" is readable by group or others; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
}

func tighten(path string, mode fs.FileMode, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&^mode == 0 {
		return nil
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	if log != nil {
		log.Warn("file was readable by other users; restricted", "path", path, "was", fi.Mode().Perm().String(), "now", mode.String())
	}
	return nil
}

// tightenOpen is tighten for an open file of the node's own: the mode is
// changed on the descriptor, and only for a file of one name (a hard link
// in data_dir to a file elsewhere, /etc/shadow for a node running as
// root where hard links are not protected, has two).
func tightenOpen(f *os.File, mode fs.FileMode, log *slog.Logger) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&^mode == 0 {
		return nil
	}
	if !soleName(fi) {
		if log != nil {
			log.Warn("file has a second name (a hard link); its mode is left as it is", "path", f.Name(), "mode", fi.Mode().Perm().String())
		}
		return nil
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("restrict %s: %w", f.Name(), err)
	}
	if log != nil {
		log.Warn("file was readable by other users; restricted", "path", f.Name(), "was", fi.Mode().Perm().String(), "now", mode.String())
	}
	return nil
}

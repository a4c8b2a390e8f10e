package eval

import (
	"os"
	"path/filepath"
)

// CorpusDir locates the public training corpus (a folder with spam/ and
// ham/): $MXGRID_CORPUS if set, else ../shared/corpus/train beside the
// repository root (where CI puts it). It reports false when neither exists,
// as on a fresh clone.
func CorpusDir() (string, bool) {
	if d := os.Getenv("MXGRID_CORPUS"); d != "" {
		return d, isDir(filepath.Join(d, "spam"))
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "corpus", "train")
			return d, isDir(filepath.Join(d, "spam"))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

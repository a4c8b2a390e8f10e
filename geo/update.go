package geo

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// maxDownload bounds what Update reads and unpacks: the largest City
// databases are about 130 MB; anything far beyond is not an mmdb.
const maxDownload = 1 << 30

// ErrNotFound is a 404 from the download server (a release not published yet).
var ErrNotFound = errors.New("not found")

// UpdateOptions say what Update fetches and where it puts it.
type UpdateOptions struct {
	// URL serves the database as .mmdb, .mmdb.gz, or a .tar.gz holding one
	// .mmdb (MaxMind's packaging); the format is recognised from the bytes.
	URL string
	// Username and Password, when set, are sent as HTTP basic auth
	// (MaxMind: account ID and licence key).
	Username, Password string
	// Path is the database file the node reads (geo.database). It is
	// replaced by an atomic rename, which the node's reload picks up.
	Path string
	// ASN expects an ASN database instead of a City or Country one.
	ASN bool
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// UpdateResult says what Update did.
type UpdateResult struct {
	// Changed is false when the server answered 304 Not Modified.
	Changed bool
	Type    string // the new file's database type
	Size    int64
}

// updateState is remembered beside the database (Path + ".state") so the
// next run asks conditionally and a 304 costs no download.
type updateState struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Update downloads the database with a conditional request, unpacks and
// verifies it (it must open as the expected kind of database), then
// atomically replaces opts.Path. A failed update leaves the old file.
func Update(ctx context.Context, opts UpdateOptions) (UpdateResult, error) {
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	statePath := opts.Path + ".state"
	var st updateState
	if b, err := os.ReadFile(statePath); err == nil {
		// A state that does not parse only costs one full download.
		_ = json.Unmarshal(b, &st)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opts.URL, nil)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %w", err)
	}
	if opts.Username != "" || opts.Password != "" {
		req.SetBasicAuth(opts.Username, opts.Password)
	}
	if _, err := os.Stat(opts.Path); err == nil && st.URL == opts.URL {
		if st.ETag != "" {
			req.Header.Set("If-None-Match", st.ETag)
		}
		if st.LastModified != "" {
			req.Header.Set("If-Modified-Since", st.LastModified)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return UpdateResult{}, nil
	case http.StatusOK:
	case http.StatusNotFound:
		return UpdateResult{}, fmt.Errorf("geoip update: GET %s: %w", opts.URL, ErrNotFound)
	default:
		return UpdateResult{}, fmt.Errorf("geoip update: GET %s: %s", opts.URL, resp.Status)
	}

	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(opts.Path)+".*")
	if err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	n, err := unpackMMDB(bufio.NewReader(io.LimitReader(resp.Body, maxDownload)), tmp, maxDownload)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %s: %w", opts.URL, err)
	}
	dbType, err := verifyMMDB(tmp.Name(), opts.ASN)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %s: %w", opts.URL, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %w", err)
	}
	if err := os.Rename(tmp.Name(), opts.Path); err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: %w", err)
	}
	st = updateState{URL: opts.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if err := writeFileAtomic(statePath, st); err != nil {
		return UpdateResult{}, fmt.Errorf("geoip update: state: %w", err)
	}
	return UpdateResult{Changed: true, Type: dbType, Size: n}, nil
}

// verifyMMDB opens the unpacked file as the node would.
func verifyMMDB(path string, wantASN bool) (string, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return "", fmt.Errorf("not a valid mmdb: %w", err)
	}
	d, err := newDatabase(db, path, wantASN, 0)
	if err != nil {
		return "", err
	}
	defer d.retire()
	return db.Metadata.DatabaseType, nil
}

// unpackMMDB copies the mmdb in r to w: r is the file itself, gzipped, or
// a (gzipped) tar archive holding it. More than limit unpacked bytes is an
// error: a small download may expand (gzip, tar sparse holes) without end.
func unpackMMDB(r *bufio.Reader, w io.Writer, limit int64) (int64, error) {
	if magic, _ := r.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0, err
		}
		defer zr.Close()
		r = bufio.NewReader(io.LimitReader(zr, limit))
	}
	// A tar header has "ustar" at offset 257.
	if h, _ := r.Peek(262); len(h) == 262 && string(h[257:262]) == "ustar" {
		return untarMMDB(r, w, limit)
	}
	return copyAtMost(w, r, limit)
}

// untarMMDB copies the first regular *.mmdb file of a tar archive.
func untarMMDB(r io.Reader, w io.Writer, limit int64) (int64, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return 0, errors.New("no .mmdb file in the archive")
		}
		if err != nil {
			return 0, err
		}
		if h.Typeflag == tar.TypeReg && strings.HasSuffix(h.Name, ".mmdb") {
			if h.Size > limit {
				return 0, fmt.Errorf("%s: %d bytes is too large", h.Name, h.Size)
			}
			return copyAtMost(w, tr, limit)
		}
	}
}

// copyAtMost copies r to w, failing beyond limit bytes.
func copyAtMost(w io.Writer, r io.Reader, limit int64) (int64, error) {
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		return n, fmt.Errorf("more than %d bytes unpacked", limit)
	}
	return n, err
}

// writeFileAtomic writes through a new temporary file: a fixed temporary
// name, in a directory others may write, is one they can plant a symlink
// at, and the write followed it to any file the operator may write.
func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

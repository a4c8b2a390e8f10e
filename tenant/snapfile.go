package tenant

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/fsperm"
)

// SnapshotFile is the name of the local snapshot in data_dir: the stored
// domains, resolved, at one version, written whole after a full load and
// when its journal outgrows it.
const SnapshotFile = "tenants.snapshot.json"

// SnapshotJournal, beside it, holds one JSON line per delta applied since:
// a change costs a line, not a rewrite of every domain (24.6 MB at 10,000
// domains of 250 recipients).
const SnapshotJournal = SnapshotFile + ".journal"

// snapshotFormat is the snapshot's layout. Members are only ever added
// within it, read by every version of it; a layout older versions would
// misread in part (a domain's recipients or policy moved) takes the next
// number, and a reader refuses a format it does not know rather than serve
// the part it understands as every domain. Files written before the format
// was recorded have none and are format 1.
const snapshotFormat = 1

// fileDomain is a domain as the files hold it: resolved, so a node serves
// it without the hierarchy.
type fileDomain struct {
	Name       string   `json:"name"`
	ID         int64    `json:"id,omitempty"`
	CustomerID int64    `json:"customer_id,omitempty"`
	Route      string   `json:"route"`
	TLS        string   `json:"tls"`
	Recipients []string `json:"recipients,omitempty"`
	// Routes keep rules without tls as they are, so they follow TLS here
	// as they do in the store.
	Routes []RouteRule `json:"routes,omitempty"`
	Policy Policy      `json:"policy"`
}

func toFile(d *Domain) fileDomain {
	return fileDomain{Name: d.Name, ID: d.ID, CustomerID: d.CustomerID, Route: d.Route.Addr, TLS: string(d.Route.TLS),
		Routes: d.Routes.normalized(), Policy: d.Policy, Recipients: slices.Collect(d.Recipients.All())}
}

// fromFile builds the domain; the file holds the effective policy, hence
// nothing inherited.
func fromFile(fd fileDomain) (*Domain, error) {
	d, fe := newDomain(domainSpec{ID: fd.ID, CustomerID: fd.CustomerID, Source: "store",
		Name: fd.Name, Route: fd.Route, TLS: fd.TLS, Routes: fd.Routes, Known: PackRecipients(fd.Recipients), Policy: fd.Policy})
	if len(fe) > 0 {
		return nil, fmt.Errorf("domain %s: %w", fd.Name, fe)
	}
	return d, nil
}

// journalEntry is one applied delta: the domains now served under the
// names it touched, and the names no longer served.
type journalEntry struct {
	// Base is the id of the snapshot the entry extends: a journal left
	// beside a newer snapshot by a crash between writing it and removing
	// the journal is not replayed onto it (its versions may be higher,
	// from before the store was restored).
	Base    string       `json:"base,omitempty"`
	Version uint64       `json:"version"`
	Saved   time.Time    `json:"saved"`
	Put     []fileDomain `json:"put,omitempty"`
	Removed []string     `json:"removed,omitempty"`
}

// snapshotFiles writes and reads the snapshot and its journal. Only the
// syncer's reload uses it, one call at a time.
type snapshotFiles struct {
	base, journal string
	// store names the database the snapshot is written from (SyncOptions.
	// Store): a file naming another is refused, not served as this
	// deployment's domains.
	store string
	// baseBytes and journalBytes decide when to compact: once the journal
	// is half the base (at least minCompact), the next change rewrites the
	// base instead, so replay at start stays short and the total written
	// stays a constant times the changes.
	baseBytes, journalBytes int64
	// baseID is the id of the snapshot written or read last.
	baseID string
	// gap is set when a delta could not be appended, or a snapshot not
	// written: a later line would replay without the change, onto a file
	// that does not hold it, so the next change rewrites the snapshot.
	gap bool
}

const minCompact = 1 << 20

func newSnapshotFiles(dir, store string) *snapshotFiles {
	return &snapshotFiles{base: filepath.Join(dir, SnapshotFile), journal: filepath.Join(dir, SnapshotJournal), store: store}
}

// removeTemps removes the temporary files of snapshots whose writer died
// before its rename: nothing else removes them, and each is as large as
// the snapshot. Only the syncer writes in data_dir under this prefix.
func (f *snapshotFiles) removeTemps() ([]string, error) {
	dir := filepath.Dir(f.base)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), SnapshotFile+".tmp") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return removed, err
			}
			removed = append(removed, e.Name())
		}
	}
	return removed, nil
}

// writeBase replaces the snapshot atomically (temp file, fsync, rename),
// so a crash mid-write leaves the previous one, then empties the journal.
// Domains are encoded one at a time: the file is never held in memory.
func (f *snapshotFiles) writeBase(version uint64, saved time.Time, domains map[string]*Domain) error {
	f.gap = true // until the new snapshot is in place
	if err := os.MkdirAll(filepath.Dir(f.base), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.base), SnapshotFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	w := bufio.NewWriterSize(tmp, 1<<16)
	id := strconv.FormatUint(rand.Uint64(), 36)
	head, err := json.Marshal(struct {
		Format  int       `json:"format"`
		ID      string    `json:"id"`
		Store   string    `json:"store,omitempty"`
		Version uint64    `json:"version"`
		Saved   time.Time `json:"saved"`
	}{snapshotFormat, id, f.store, version, saved.UTC()})
	if err != nil {
		tmp.Close()
		return err
	}
	w.Write(head[:len(head)-1])
	w.WriteString(`,"domains":[`)
	first := true
	for _, d := range domains {
		if d.Source != "store" {
			continue
		}
		b, err := json.Marshal(toFile(d))
		if err != nil {
			tmp.Close()
			return err
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		w.Write(b)
	}
	w.WriteString("]}\n")
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	size, _ := tmp.Seek(0, io.SeekCurrent)
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.base); err != nil {
		return err
	}
	f.baseBytes, f.journalBytes, f.baseID, f.gap = size, 0, id, false
	if err := os.Remove(f.journal); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// appendDelta records one applied delta: the domains served now under the
// touched names. It is not fsynced: a line lost in a crash only leaves the
// file a little older, which the store corrects at the next load, and a
// torn last line is ignored on replay.
func (f *snapshotFiles) appendDelta(version uint64, saved time.Time, served map[string]*Domain, touched []string) error {
	if f.gap || f.journalBytes > max(f.baseBytes/2, minCompact) {
		return f.writeBase(version, saved, served)
	}
	e := journalEntry{Base: f.baseID, Version: version, Saved: saved.UTC()}
	for _, name := range touched {
		if d, ok := served[name]; ok && d.Source == "store" {
			e.Put = append(e.Put, toFile(d))
		} else {
			e.Removed = append(e.Removed, name)
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	j, err := openRegular(f.journal, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		f.gap = true
		return err
	}
	n, err := j.Write(append(b, '\n'))
	f.journalBytes += int64(n)
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.gap = true
	}
	return err
}

// read loads the snapshot and replays its journal: the stored domains by
// name, their version and when they were last saved.
func (f *snapshotFiles) read() (uint64, time.Time, map[string]*Domain, error) {
	version, saved, domains, err := f.readBase()
	if err != nil {
		return 0, time.Time{}, nil, fmt.Errorf("%s: %w", f.base, err)
	}
	j, err := openRegular(f.journal, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return version, saved, domains, nil
	}
	if err != nil {
		return 0, time.Time{}, nil, fmt.Errorf("%s: %w", f.journal, err)
	}
	defer j.Close()
	r := bufio.NewReaderSize(j, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		f.journalBytes += int64(len(line))
		if err != nil {
			// EOF: the end, or a last line torn by a crash, which never
			// got its newline; either way what came before stands.
			if !errors.Is(err, io.EOF) {
				return 0, time.Time{}, nil, fmt.Errorf("%s: %w", f.journal, err)
			}
			return version, saved, domains, nil
		}
		var e journalEntry
		if err := json.Unmarshal(bytes.TrimSpace(line), &e); err != nil {
			return 0, time.Time{}, nil, fmt.Errorf("%s: %w", f.journal, err)
		}
		if e.Base != f.baseID || e.Version <= version {
			continue // written for the base this one replaced
		}
		for _, name := range e.Removed {
			delete(domains, name)
		}
		for _, fd := range e.Put {
			d, err := fromFile(fd)
			if err != nil {
				return 0, time.Time{}, nil, fmt.Errorf("%s: %w", f.journal, err)
			}
			domains[d.Name] = d
		}
		version, saved = e.Version, e.Saved
	}
}

// readBase decodes the snapshot one domain at a time.
func (f *snapshotFiles) readBase() (uint64, time.Time, map[string]*Domain, error) {
	fh, err := openRegular(f.base, os.O_RDONLY, 0)
	if err != nil {
		return 0, time.Time{}, nil, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil {
		f.baseBytes = st.Size()
	}
	var (
		version uint64
		saved   time.Time
		domains = map[string]*Domain{}
	)
	f.baseID = ""
	dec := json.NewDecoder(bufio.NewReaderSize(fh, 1<<16))
	if err := expectDelim(dec, '{'); err != nil {
		return 0, time.Time{}, nil, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, time.Time{}, nil, err
		}
		switch tok {
		case "format":
			var format json.RawMessage
			if err = dec.Decode(&format); err == nil && string(format) != strconv.Itoa(snapshotFormat) {
				err = fmt.Errorf("written in format %s by another version of mxgrid; this one reads format %d", format, snapshotFormat)
			}
		case "id":
			err = dec.Decode(&f.baseID)
		case "store":
			// Files written before the store was recorded have none.
			var store string
			if err = dec.Decode(&store); err == nil && store != f.store {
				err = fmt.Errorf("written from another store (%s), not this node's (%s)", store, f.store)
			}
		case "version":
			err = dec.Decode(&version)
		case "saved":
			err = dec.Decode(&saved)
		case "domains":
			err = decodeDomains(dec, domains)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return 0, time.Time{}, nil, fmt.Errorf("%v: %w", tok, err)
		}
	}
	return version, saved, domains, expectDelim(dec, '}')
}

func decodeDomains(dec *json.Decoder, into map[string]*Domain) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		var fd fileDomain
		if err := dec.Decode(&fd); err != nil {
			return err
		}
		d, err := fromFile(fd)
		if err != nil {
			return err
		}
		if _, dup := into[d.Name]; dup {
			return fmt.Errorf("domain %s is defined twice", d.Name)
		}
		into[d.Name] = d
	}
	return expectDelim(dec, ']')
}

// openRegular opens one of the snapshot's files, which the syncer alone
// writes, only as the node's own regular file (fsperm.OpenOwn): a FIFO
// there blocked the open until something wrote to it, so a node starting
// with the store down never listened and a running one applied no tenant
// change after its next one; a symbolic link was followed, so a node
// running as root appended journal lines to the file it named, or created
// it, and served another file as its snapshot.
func openRegular(path string, flag int, perm os.FileMode) (*os.File, error) {
	return fsperm.OpenOwn(path, flag, perm)
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("found %v, want %v", tok, want)
	}
	return nil
}

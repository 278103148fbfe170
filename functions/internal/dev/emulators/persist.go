package emulators

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The Firestore emulator keeps its documents in memory. A persisted one (Options.Persist) exports
// them to Persist/next, then makes that export Persist/current: the previous export moves to
// Persist/prev while the new one takes its place, and is removed after. At every moment one of
// current and prev is a complete export (current unless a crash came between the two renames),
// and latestExport takes it.
const (
	exportNext    = "next"
	exportCurrent = "current"
	exportPrev    = "prev"
)

// latestExport is the metadata file of the latest complete export in dir ("" if none), the
// argument of the emulator's --import-data.
func latestExport(dir string) string {
	for _, d := range []string{exportCurrent, exportPrev} {
		if meta := exportIn(filepath.Join(dir, d)); meta != "" {
			return meta
		}
	}
	return ""
}

// LatestExport is the metadata file of the latest complete export in a persisted Firestore
// emulator's directory (Options.Persist), "" if there is none yet.
func LatestExport(dir string) string { return latestExport(dir) }

func exportIn(dir string) string {
	found, _ := filepath.Glob(filepath.Join(dir, "*", "*.overall_export_metadata"))
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// persistLoop exports the documents of a launch every PersistEvery until it ends.
func (p *Process) persistLoop(r *run, host string) {
	every := p.opt.PersistEvery
	if every <= 0 {
		every = DefaultPersistEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		err := p.persist(r, host)
		if err == nil {
			continue
		}
		// An export that fails because the emulator is going away is not news: its exit is.
		select {
		case <-r.done:
			return
		case <-time.After(time.Second):
		}
		fmt.Fprintf(p.log, "[emulators] exporting the documents to %s: %v\n", p.opt.Persist, err)
		p.persistMu.Lock()
		report := p.persistOK
		p.persistOK = false
		p.persistMu.Unlock()
		if report {
			p.emit(Event{Kind: PersistFailed, Err: err})
		}
	}
}

// persist exports the documents of a running launch to Options.Persist, replacing the previous
// export if they changed.
func (p *Process) persist(r *run, host string) error {
	p.persistMu.Lock()
	defer p.persistMu.Unlock()
	if r.exited() {
		return errors.New("the emulator is not running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	digest, err := saveExport(ctx, host, p.opt.ProjectID, p.opt.Persist, p.saved)
	if err != nil {
		return err
	}
	p.saved, p.persistOK = digest, true
	return nil
}

// saveExport exports a project's documents from the emulator at host into dir/current (see
// exportCurrent), unless they are those of the export whose digest is last. It returns the digest
// of dir/current.
func saveExport(ctx context.Context, host, projectID, dir, last string) (string, error) {
	next, current, prev := filepath.Join(dir, exportNext), filepath.Join(dir, exportCurrent), filepath.Join(dir, exportPrev)
	if err := os.RemoveAll(next); err != nil {
		return last, err
	}
	if _, err := ExportFirestore(ctx, host, projectID, next); err != nil {
		os.RemoveAll(next)
		return last, err
	}
	digest, err := exportDigest(next)
	if err != nil {
		os.RemoveAll(next)
		return last, err
	}
	if digest == last && exportIn(current) != "" {
		return last, os.RemoveAll(next)
	}
	if err := os.RemoveAll(prev); err != nil {
		return last, err
	}
	if _, err := os.Stat(current); err == nil {
		if err := os.Rename(current, prev); err != nil {
			return last, err
		}
	}
	if err := os.Rename(next, current); err != nil {
		return last, err
	}
	return digest, os.RemoveAll(prev)
}

// exportDigest is a digest of an export's documents: its files but the metadata files, which
// name the export's time.
func exportDigest(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasSuffix(d.Name(), "_metadata") {
			rel, _ := filepath.Rel(dir, path)
			// The export's own folder is named after its time too.
			if i := strings.IndexByte(rel, filepath.Separator); i >= 0 {
				rel = rel[i+1:]
			}
			files = append(files, rel+"\x00"+path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, path, _ := strings.Cut(f, "\x00")
		fmt.Fprintf(h, "%s\x00", rel)
		file, err := os.Open(path)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, file)
		file.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
